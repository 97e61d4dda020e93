"""Learning: this user's live policy telemetry and the simulated DQN-vs-baselines comparison."""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from mmrec.ui import loaders as L

v = L.view()
st.title("Learning")
if L.not_ready(v):
    st.stop()

tab_live, tab_sim = st.tabs(["Your live policy", "DQN vs baselines (simulated users)"])

with tab_live:
    if not L.need_user(v):
        tel = v.svc.telemetry(v.user_id, v.weights, v.filters, v.k)
        rewards = list(tel.get("rewards") or [])
        losses = list(tel.get("td_losses") or [])
        epsilons = list(tel.get("epsilons") or [])
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Ratings learned from", len(rewards))
        m2.metric("Policy updates", int(tel.get("n_updates") or 0))
        m3.metric("Last reward", f"{rewards[-1]:.2f}" if rewards else "—")
        m4.metric("Last TD loss", f"{losses[-1]:.4f}" if losses else "—")
        if not rewards and not losses:
            st.info(
                "No live updates yet: rate a movie on the For you page and its reward, TD loss and ε appear here."
            )
        c1, c2 = st.columns(2)
        if rewards:
            fig = px.line(
                pd.DataFrame({"rating #": range(1, len(rewards) + 1), "reward": rewards}),
                x="rating #",
                y="reward",
                markers=True,
                title="Reward per rating",
            )
            c1.plotly_chart(fig, key="learn_rewards")
        if losses:
            fig = px.line(
                pd.DataFrame({"update #": range(1, len(losses) + 1), "TD loss": losses}),
                x="update #",
                y="TD loss",
                markers=True,
                title="TD loss (Huber) per update",
            )
            c2.plotly_chart(fig, key="learn_losses")
        if epsilons:
            fig = px.line(
                pd.DataFrame({"update #": range(1, len(epsilons) + 1), "ε": epsilons}),
                x="update #",
                y="ε",
                markers=True,
                title="Exploration rate ε",
            )
            c1.plotly_chart(fig, key="learn_eps")
        q = list(tel.get("q_values") or [])
        if q:
            titles = [L.hover(t) for t in tel.get("titles") or [""] * len(q)]
            fig = go.Figure(
                go.Bar(
                    x=list(range(1, len(q) + 1)),
                    y=q,
                    customdata=titles,
                    hovertemplate="#%{x} %{customdata}<br>Q %{y:.3f}<extra></extra>",
                )
            )
            fig.update_layout(
                title="Q-values of your current list (rank 1 first)",
                xaxis_title="rank",
                yaxis_title="Q",
            )
            c2.plotly_chart(fig, key="learn_q")

with tab_sim:
    reports = L.find_reports(v.svc)
    policy = reports.get("policy")
    if not policy:
        st.info("No policy report yet. Generate it with:")
        st.code("python -m mmrec evaluate policy --seeds 3", language="bash")
    else:
        tables = L.report_tables(policy)
        for j, (name, frame) in enumerate(tables):
            st.markdown(f"**{L.md(name) or 'policy'}**")
            st.dataframe(frame, key=f"learn_policy_table_{j}")
            numeric = frame.select_dtypes("number")
            if len(numeric.columns) and len(frame) > 1:
                col = numeric.columns[0]
                err = next(
                    (
                        c
                        for c in numeric.columns
                        if c.lower().startswith(f"{col}_std") or c.lower() in ("std", f"{col}_sd")
                    ),
                    None,
                )
                fig = px.bar(
                    frame.reset_index(),
                    x=frame.index.name or "index",
                    y=col,
                    error_y=err,
                    title=f"{name}: {col}",
                )
                st.plotly_chart(fig, key=f"learn_policy_chart_{j}")
        if isinstance(policy, dict) and policy.get("markdown"):
            with st.expander("Report text"):
                st.markdown(policy["markdown"])
        st.caption("Regenerate: `python -m mmrec evaluate policy --seeds 3`")
