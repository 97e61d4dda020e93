"""Learning: this user's live policy telemetry, the within-session learning curve of simulated
newcomers (reports/live.json), the simulated DQN-vs-baselines comparison and one simulated
user's hidden dynamics (satiation, satisfaction, leaving) replayed step by step."""

import pandas as pd
import plotly.express as px
import streamlit as st

from mmrec.ui import charts as LC
from mmrec.ui import loaders as L

v = L.view()
st.title("Learning")
if L.not_ready(v):
    st.stop()

tab_live, tab_curve, tab_sim, tab_dyn = st.tabs(
    [
        "Your live policy",
        "Learning within a session",
        "DQN vs baselines (simulated users)",
        "User dynamics (simulated)",
    ]
)

with tab_live:
    if not L.need_user(v):
        tel = v.svc.telemetry(v.user_id, v.weights, v.filters, v.k)
        rewards = list(tel.get("rewards") or [])
        surprises = list(tel.get("surprises") or [])
        epsilons = list(tel.get("epsilons") or [])
        stored = len(v.svc.user_state(v.user_id).history)
        onboarding = len(v.svc.prior_state(v.user_id).history)  # liked titles at onboarding
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(
            "Ratings learned from",
            len(rewards),
            help="Live updates: one per star rating on a card (a film rated again counts again).",
        )
        m2.metric("Ratings stored", stored, help="Films with a stored rating (the sidebar count).")
        m3.metric("Last reward", f"{rewards[-1]:.2f}" if rewards else "—")
        m4.metric("Last surprise", f"{surprises[-1]:+.2f}" if surprises else "—")
        why = LC.rating_counts_sentence(
            len(rewards), stored, onboarding, int(tel.get("n_updates") or 0)
        )
        if why:
            st.caption("Why the two counts differ: " + why)
        if not rewards:
            st.info(
                "No live updates yet: rate a movie on the For you page and its reward, the "
                "surprise it carried (rating minus what the model expected) and ε appear here."
            )
        c1, c2 = st.columns(2)
        if rewards:
            fig = px.line(
                pd.DataFrame({"rating #": range(1, len(rewards) + 1), "reward": rewards}),
                x="rating #",
                y="reward",
                markers=True,
                title="Reward per rating (your stars on a −1..1 scale)",
            )
            fig.update_yaxes(range=[-1.05, 1.05])
            c1.plotly_chart(fig, key="learn_rewards")
        if surprises:
            fig = px.line(
                pd.DataFrame({"rating #": range(1, len(surprises) + 1), "surprise": surprises}),
                x="rating #",
                y="surprise",
                markers=True,
                title="Surprise per rating (reward − expected; 0 = as expected)",
            )
            c2.plotly_chart(fig, key="learn_surprises")
        if epsilons:
            c1.plotly_chart(LC.epsilon_chart(epsilons, v.ui.max_epsilon), key="learn_eps")
        q = list(tel.get("q_values") or [])
        if q:
            titles = [L.hover(t) for t in tel.get("titles") or [""] * len(q)]
            c2.plotly_chart(LC.q_chart(q, titles), key="learn_q")
            c2.caption(
                "The grid is ordered by its score (the policy's Q, standardised, plus what your "
                "live ratings predict), so Q need not fall from slot to slot."
            )

data_dir, ckpt_dir = L.current_paths()


def no_report(what: str, command: str, folder: str | None) -> None:
    """No ``what`` report for this data folder: the command that writes one, and the folder
    of a report written elsewhere (not shown)."""
    st.info(f"No {what} report for this data folder yet. Generate it with:")
    st.code(
        f"{command} --data {data_dir} --checkpoints {ckpt_dir}", language="bash", wrap_lines=True
    )
    if folder:
        st.caption(f"A {what} report exists for another data folder ({L.md(folder)}); not shown.")


with tab_curve:
    live, live_elsewhere = L.report_for_folder(L.find_reports(v.svc), "live", data_dir)
    steps = []
    for arm, summary in ((live or {}).get("arms") or {}).items():
        for t, point in enumerate(summary.get("per_step") or []):
            steps.append({"step": t + 1, "policy": arm.replace("_", " "), **point})
    if not steps:
        no_report("live-loop", "python -m mmrec evaluate live", live_elsewhere)
    else:
        protocol = live.get("protocol") or {}
        st.caption(
            L.md(
                f"Simulated newcomers: {protocol.get('users', '?')}, seeds "
                f"{protocol.get('seeds', '?')}; each step the top pick on screen is rated by the "
                "hidden user model and sent to rate(). Mean over sessions per step."
            )
        )
        frame = pd.DataFrame(steps)
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            px.line(
                frame, x="step", y="true", color="policy", markers=True,
                title="Mean true rating per step",
            ),
            key="learn_live_true",
        )  # fmt: skip
        c2.plotly_chart(
            px.line(
                frame, x="step", y="hit", color="policy", markers=True,
                title="Hit rate per step (true rating >= 4)",
            ),
            key="learn_live_hit",
        )  # fmt: skip
        diff = live.get("live_minus_off") or {}
        if diff:
            st.markdown(
                f"**Live minus updates off** (paired, per session): {diff['diff']:+.3f} ± "
                f"{diff['ci95']:.3f} stars"
            )
        st.caption(
            "Regenerate: `" + str(live.get("command") or "python -m mmrec evaluate live") + "`"
        )

with tab_sim:
    policy, policy_elsewhere = L.report_for_folder(L.find_reports(v.svc), "policy", data_dir)
    frame = L.report_frame("policy", policy) if policy else None
    if frame is None or frame.empty:
        no_report("policy", L.REPORT_SPECS["policy"]["command"], policy_elsewhere)
    else:
        protocol = policy.get("protocol") or {}
        st.caption(
            L.md(
                f"Simulated sessions: {protocol.get('sessions_per_seed', '?')} per seed, seeds "
                f"{protocol.get('seeds', '?')}, episode length {protocol.get('episode_length', '?')}; "
                f"users: {protocol.get('users', '?')}. Bars: mean, error bars: 95% CI."
            )
        )
        metrics = [m for m in L.REPORT_SPECS["policy"]["metrics"] if m in frame.columns]
        c1, c2 = st.columns(2)
        for j, metric in enumerate(metrics[:4]):
            fig = L.report_chart(frame, metric, metric.replace("_", " "), highlight="dqn")
            (c1 if j % 2 == 0 else c2).plotly_chart(fig, key=f"learn_policy_{metric}")
        lifts = policy.get("lifts") or {}
        if lifts:
            st.markdown(
                "**DQN minus each baseline** (difference ± 95% CI of the paired difference)"
            )
            rows = {
                base: {
                    m: f"{d['diff']:+.3f} ± {d.get('diff_ci95', float('nan')):.3f}"
                    for m, d in per.items()
                    if isinstance(d, dict) and "diff" in d
                }
                for base, per in lifts.items()
            }
            st.dataframe(pd.DataFrame(rows).T, key="learn_policy_lifts")
        curves = policy.get("learning_curves") or {}
        for name, curve in curves.items() if isinstance(curves, dict) else []:
            fig = LC.training_curves_chart(curve) if isinstance(curve, dict) else None
            if fig is not None:
                who = "the served agent" if name == "given" else f"seed {name}"
                st.markdown(f"**Training curve of the DQN in the simulator ({L.md(who)})**")
                st.plotly_chart(fig, key=f"learn_curve_{name}")
        st.caption(
            "Regenerate: `"
            + str(policy.get("command") or L.REPORT_SPECS["policy"]["command"])
            + "`"
        )


def dynamics_replay_view() -> None:
    """One simulated user's episode under the chosen policy, with the hidden state charted."""
    with st.spinner("Loading the simulated users…"):
        sim_users = v.svc.simulated_users()
    d1, d2, d3 = st.columns([2, 2, 1])
    policy_name = d1.selectbox("Policy", v.svc.DYNAMICS_POLICIES, key="dyn_policy")
    sim_user = d2.selectbox("Simulated user", sim_users, key="dyn_user")
    dyn_seed = d3.number_input("Seed", 0, 999, 0, key="dyn_seed")
    replay = v.svc.dynamics_replay(int(sim_user), policy_name, int(dyn_seed))
    steps = replay["steps"]
    r1, r2, r3, r4 = st.columns(4)
    r1.metric("Episode reward", f"{replay['reward']:.2f}")
    r2.metric("Recommendations", len(steps))
    r3.metric("Sessions", replay["sessions"])
    r4.metric("Watch minutes", f"{sum(x['watch_minutes'] for x in steps):.0f}")
    st.caption(
        L.md(
            "Onboarding genres (what this user said at sign-up): "
            + (", ".join(replay["onboarding_genres"]) or "none")
        )
    )
    c1, c2 = st.columns(2)
    c1.plotly_chart(LC.dynamics_interest_chart(replay), key="dyn_interest")
    c2.plotly_chart(LC.dynamics_satisfaction_chart(replay), key="dyn_satisfaction")
    fig = LC.dynamics_satiation_chart(replay)
    if fig is not None:
        st.plotly_chart(fig, key="dyn_satiation")
    table = pd.DataFrame(steps)[
        ["session", "title", "genres", "static", "interest", "rating", "watch_minutes"]
    ].rename(columns={"static": "taste", "watch_minutes": "minutes"})
    table.index = range(1, len(table) + 1)
    st.dataframe(table.round(2), key="dyn_table")


with tab_dyn:
    st.caption(
        "One held-out simulated user, starting cold, with every user dynamic of the simulator "
        "on (mmrec/rl/dynamics.py): repeating a genre tires them of it (satiation), films unlike "
        "the session so far gain interest (novelty), long films need more interest, an unhappy "
        "user leaves early, a satisfied one comes back for another session. No policy sees this "
        "state; the myopic oracle reads it to pick the best film for right now."
    )
    if v.svc.simulator_ready() or st.session_state.get("dyn_started"):
        dynamics_replay_view()
    else:
        # Every tab's body runs on each visit: never fit a user model unasked.
        st.info(
            "This catalog has no hidden users: the simulator first fits a user model to its "
            "ratings (about 20 s on the real MovieLens catalog)."
        )
        if st.button("Fit the simulator", key="dyn_start"):
            st.session_state["dyn_started"] = True
            st.rerun()
