"""Data: the catalog in use, its validation problems and modality coverage; build or rebuild the
features and models with a progress bar; switch to another data folder (demo or imported).

Building and switching are admin actions (``ui.data_admin`` / ``MMREC_DATA_ADMIN=1``, off by
default): a visitor must not make the server build or write anywhere. With them on, only catalogs
below the configured data roots are offered (a list, no free text), their checkpoints are derived
from the folder (no checkpoint field), and a rebuild is written beside the served version and
swapped in when complete, so the other sessions keep being served meanwhile."""

import pandas as pd
import plotly.express as px
import streamlit as st

from mmrec.service import rebuild
from mmrec.ui import loaders as L

v = L.view()
st.title("Data")
admin = L.base_config().ui.data_admin
data_dir, ckpt_dir = L.current_paths()
st.markdown(f"Data folder {L.md(data_dir)} · checkpoints {L.md(ckpt_dir)}")


def _build(force_msg: str) -> None:
    bar = st.progress(0.0, text=force_msg)

    def progress(done: int, total: int, stage: str) -> None:
        frac = min(1.0, done / total) if total else 0.0
        bar.progress(frac, text=f"{stage}: {done}/{total}")

    try:
        result = rebuild(L.current_config(), progress=progress)
    except Exception as exc:  # a bad folder must not take the page down: say what failed
        bar.empty()
        st.error(f"Build failed: {type(exc).__name__}: {exc}")
        return
    bar.progress(1.0, text="done")
    # no cache clear: the new version has a new cache key (see loaders.service), the entry it
    # replaces is dropped when the new one is first served
    st.session_state["build_msg"] = result.get("message", "built")
    st.rerun()


def _command() -> str:
    return f"python -m mmrec build --data {data_dir} --checkpoints {ckpt_dir}"


if st.session_state.get("build_msg"):
    st.success(st.session_state.pop("build_msg"))

# ----------------------------------------------------------------------------- status / build
if v.svc is None:
    st.error(f"The recommender is not ready: {v.error}")
    check = L.validate_folder(data_dir)
    (st.info if check["ok"] else st.warning)(f"Catalog check: {check['message']}")
    if not admin:
        st.info(
            f"Build them with `{L.md(_command())}` (building from this page is an admin setting)."
        )
    elif check["ok"] and st.button(
        "Build features and models now", key="build_now", type="primary"
    ):
        _build("Building features, fusion model and policy …")
else:
    status = v.svc.status()
    s = status["summary"]
    cov = s["coverage"]
    c = st.columns(5)
    c[0].metric("Movies", s["movies"])
    c[1].metric("Users (ratings.csv)", s["users"])
    c[2].metric("Ratings", s["ratings"])
    c[3].metric("Genres", s["genres"])
    c[4].metric("Problems", f"{s['errors']} err · {s['warnings']} warn")

    n = max(1, s["movies"])
    cov_frame = pd.DataFrame(
        {
            "modality": ["text (synopsis)", "image (poster)", "audio (trailer)", "all three"],
            "movies": [cov["text"], cov["image"], cov["audio"], cov["all_three"]],
        }
    )
    cov_frame["share"] = cov_frame["movies"] / n
    fig = px.bar(
        cov_frame, x="modality", y="share", text="movies", range_y=[0, 1], title="Modality coverage"
    )
    st.plotly_chart(fig, key="data_coverage")

    problems = status.get("problems") or []
    st.subheader(f"Validation problems ({len(problems)})", anchor=False)
    if problems:
        st.dataframe(pd.DataFrame({"problem": problems}), key="data_problems", height=240)
    else:
        st.caption("None: every row and media file passed the checks.")

    policy = status.get("policy") or {}
    if policy:
        with st.expander("Policy checkpoint"):
            st.json(policy, expanded=False)

    st.subheader("Build", anchor=False)
    st.caption(
        "Brings the checkpoints up to date with the data folder: only stages whose inputs "
        "changed re-run (same as `python -m mmrec build`). The new version is built beside the "
        "served one and replaces it only when complete."
    )
    if not admin:
        st.caption(
            f"Rebuilding from this page is off (admin setting `ui.data_admin`); run "
            f"`{L.md(_command())}`."
        )
    elif st.button("Rebuild features and models", key="rebuild"):
        _build("Rebuilding …")

# ----------------------------------------------------------------------------- switch folder
st.subheader("Switch data folder", anchor=False)
base = L.base_config()
if not admin:
    st.caption(
        f"This server serves {L.md(base.paths.data_dir)}. Switching folders from this page is an "
        "admin setting (`ui.data_admin`, env `MMREC_DATA_ADMIN=1`), off by default."
    )
    st.stop()
roots = ", ".join(str(r) for r in base.paths.data_roots)
st.caption(
    f"Catalogs below the data roots ({L.md(roots)}; `paths.data_roots`, env `MMREC_DATA_ROOTS`). "
    "Each folder has its own checkpoints. An imported catalog: e.g. the folder written by "
    "`python -m mmrec import-movielens --data data/movielens ...`."
)
choices = L.data_choices(base)
labels = list(choices)
current = next((lab for lab, path in choices.items() if path == data_dir), labels[0])
with st.form("switch_form", border=True):
    st.selectbox("Data folder", labels, index=labels.index(current), key="switch_data")
    validate = st.form_submit_button("Validate")
    use = st.form_submit_button("Use this folder", type="primary")
if validate or use:
    target = choices.get(st.session_state.get("switch_data"), "")
    check = L.validate_folder(target)
    (st.success if check["ok"] else st.error)(f"{L.md(target)}: {check['message']}")
    for p in check.get("problems", [])[:20]:
        st.caption(L.md(p))
    if use and check["ok"]:
        st.session_state[L.K_DATA_DIR] = target
        for key in (L.K_GRID, L.K_CHANGE, L.K_USER, L.K_WHY):
            st.session_state.pop(key, None)
        st.rerun()
if st.session_state.get(L.K_DATA_DIR):
    if st.button("Back to the default folder", key="switch_default"):
        st.session_state.pop(L.K_DATA_DIR, None)
        for key in (L.K_GRID, L.K_CHANGE, L.K_USER, L.K_WHY):
            st.session_state.pop(key, None)
        st.rerun()
