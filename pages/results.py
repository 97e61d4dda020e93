"""Results: the evaluation reports (modality, policy, ranking) as tables and charts."""

import streamlit as st

from mmrec.ui import loaders as L

v = L.view()
st.title("Results")
if L.not_ready(v):
    st.stop()

reports = L.find_reports(v.svc)
data_dir, ckpt_dir = L.current_paths()
st.caption(
    "Read from reports/\\*.json, written by the commands shown under each section. Only the "
    f"reports written for this session's data folder ({L.md(data_dir)}) are shown; reports "
    "written for other folders are only named under each section's title."
)

for kind, spec in L.REPORT_SPECS.items():
    st.header(spec["title"], anchor=False)
    of_kind = [n for n in reports if L.report_kind(n) == kind]
    names = [n for n in of_kind if L.same_folder(L.report_data_dir(reports[n]), data_dir)]
    others = [n for n in of_kind if n not in names]
    if not names:
        st.info("Not generated for this data folder yet. Generate it with:")
        st.code(
            f"{spec['command']} --data {data_dir} --checkpoints {ckpt_dir}",
            language="bash",
            wrap_lines=True,
        )
    if others:
        st.caption(
            "Written for other data folders (not shown): "
            + "; ".join(
                f"{L.md(n)} ({L.md(L.report_data_dir(reports[n]) or 'folder not recorded')})"
                for n in others
            )
        )
    if not names:
        continue
    for name in names:
        report = reports[name]
        if len(names) > 1:
            st.subheader(L.md(name), anchor=False)
        verdict = L.report_verdict(kind, report)
        if verdict:
            st.markdown("**In short.** " + L.md(verdict))
        frame = L.report_frame(name, report)
        if frame is None or frame.empty:
            st.json(report, expanded=False)
        else:
            st.dataframe(frame, key=f"res_table_{name}")
            metrics = [m for m in spec["metrics"] if m in frame.columns]
            if metrics:
                metric = st.selectbox("Chart", metrics, key=f"res_metric_{name}")
                highlight = (
                    "dqn" if kind in ("policy", "ranking") else "fused (text + image + audio)"
                )
                fig = L.report_chart(frame, metric, f"{name}: {metric}", highlight=highlight)
                st.plotly_chart(fig, key=f"res_chart_{name}")
        text = L.report_markdown(v.svc, name)
        if text:
            with st.expander("Full report (Markdown)"):
                st.markdown(text)
        st.caption("Regenerate with:")
        st.code(str(report.get("command") or spec["command"]), language="bash", wrap_lines=True)
