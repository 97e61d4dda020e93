"""Results: the evaluation reports (modality, policy, ranking) as tables and charts."""

import plotly.express as px
import streamlit as st

from mmrec.ui import loaders as L

v = L.view()
st.title("Results")
if L.not_ready(v):
    st.stop()

REPORTS = {
    "modality": ("Per-modality comparison", "python -m mmrec evaluate modality --seeds 3"),
    "policy": (
        "Policy: DQN vs baselines in the simulator",
        "python -m mmrec evaluate policy --seeds 3",
    ),
    "ranking": ("Ranking on held-out ratings", "python -m mmrec evaluate ranking"),
}
reports = L.find_reports(v.svc)
data_dir, ckpt_dir = L.current_paths()
st.caption(
    f"Reports read from `reports/*.json`. Data {L.md(data_dir)}, checkpoints {L.md(ckpt_dir)}."
)

others = [k for k in reports if not any(k == n or k.startswith(n) for n in REPORTS)]
for name in list(REPORTS) + others:
    title, command = REPORTS.get(name, (name, "python -m mmrec evaluate ..."))
    st.header(title, anchor=False)
    matching = {
        k: r for k, r in reports.items() if k == name or (name in REPORTS and k.startswith(name))
    }
    if not matching:
        st.info("Not generated yet.")
    for key, report in matching.items():
        if key != name:
            st.subheader(L.md(key), anchor=False)
        tables = L.report_tables(report)
        if not tables:
            st.json(report, expanded=False)
        for t, (tname, frame) in enumerate(tables):
            st.markdown(f"**{L.md(tname) or key}**")
            st.dataframe(frame, key=f"res_{key}_{t}")
            numeric = frame.select_dtypes("number")
            if len(numeric.columns) and len(frame) > 1:
                fig = px.bar(
                    frame.reset_index(),
                    x=frame.index.name or "index",
                    y=list(numeric.columns[:4]),
                    barmode="group",
                    title=f"{key}: {tname}",
                )
                st.plotly_chart(fig, key=f"res_chart_{key}_{t}")
        if isinstance(report, dict) and report.get("markdown"):
            with st.expander("Report text"):
                st.markdown(report["markdown"])
    st.caption("Regenerate with:")
    st.code(command + f" --data {data_dir} --checkpoints {ckpt_dir}", language="bash")
