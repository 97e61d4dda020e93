"""Whether a page can show anything yet: folder validation, first-build progress, the
"not ready" and "pick a user" notices."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mmrec.ui.safetext import md
from mmrec.ui.session import (
    DATA_PAGE,
    HOME_PAGE,
    View,
    allowed_data_dir,
    base_config,
    current_paths,
)


@st.cache_data(show_spinner=False, max_entries=8, ttl=60)
def validate_folder(path: str) -> dict:
    """Load a candidate data folder and report what the catalog loader found (only the
    configured folder and folders below the data roots are ever read)."""
    from mmrec.data.catalog import CatalogError, load_catalog
    from mmrec.safeio import escape

    folder = Path(path).expanduser()
    if not allowed_data_dir(str(folder)):
        return {
            "ok": False,
            "message": f"{escape(folder)}: not below a configured data root: refused",
            "problems": [],
        }
    if not (folder / "movies.csv").is_file():
        return {"ok": False, "message": f"{escape(folder)}: no movies.csv here", "problems": []}
    try:
        cat = load_catalog(folder, base_config().data)
    except CatalogError as exc:
        return {"ok": False, "message": str(exc), "problems": []}
    summary = cat.summary()
    return {
        "ok": not cat.errors and summary["movies"] > 0,
        "message": f"{summary['movies']} movies, {summary['ratings']} ratings, "
        f"{summary['errors']} error(s), {summary['warnings']} warning(s)",
        "summary": summary,
        "problems": [str(p) for p in cat.problems[:200]],
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def setup_progress(ckpt_dir: str) -> bool:
    """While ``python -m mmrec setup`` builds this folder (first run, ``make run``): its stage,
    progress and time left, refreshed every few seconds; the app reruns into the normal pages
    when the build is done. True while a build is (or was, unfinished) in progress."""
    from mmrec.progress import read_progress

    p = read_progress(ckpt_dir)
    if p is None or p.get("state") == "done":
        return False

    @st.fragment(run_every=3)
    def panel():
        q = read_progress(ckpt_dir)
        if q is None or q.get("state") == "done":
            st.rerun()  # models ready: the whole page, now with recommendations
        state = q.get("state")
        if state == "running":
            st.subheader("Preparing the demo catalog and the models (first run)", anchor=False)
            st.write(
                "This happens once: generating the demo films (posters, trailers, ratings), "
                "encoding synopses, posters and trailers, then training the fusion model and "
                "the policy. Your recommendations appear here when it is done."
            )
            stage = str(q.get("stage", ""))
            done, total = int(q.get("done", 0)), int(q.get("total", 0))
            count = f" · {done:,} of {total:,}" if total else ""
            eta = q.get("eta_s")
            left = f" · about {_duration(eta)} left in this stage" if eta is not None else ""
            st.progress(q.get("fraction", 0.0), text=f"{md(stage)}{count}{left}")
            finished = [x for x in q.get("stages", []) if x != stage]
            st.caption(
                f"Running for {_duration(q.get('elapsed_s', 0))}"
                + (" · done: " + ", ".join(md(x) for x in finished) if finished else "")
                + (f" · {md(q['message'])}" if q.get("message") else "")
            )
        elif state == "failed":
            st.error(f"The first build failed: {md(q.get('message', ''))}")
            st.caption("The terminal running `make run` has the details; run it again to retry.")
        else:  # stopped: the process is gone without finishing
            st.warning(
                "The first build stopped before it finished (the process is gone). Run "
                "`make run` (or `python -m mmrec setup`) again: finished stages are kept."
            )

    panel()
    return True


def not_ready(v: View) -> bool:
    """Show why the models are missing (with a link to the Data page); True if so. While the
    first build runs, its progress instead (:func:`setup_progress`)."""
    if v.svc is not None:
        return False
    if setup_progress(current_paths()[1]):
        return True
    st.error(
        "The recommender is not ready for this data folder.\n\n"
        f"{v.error}\n\nBuild the features and models on the **Data** page (or run "
        "`python -m mmrec build`)."
    )
    st.page_link(DATA_PAGE, label="Open the Data page to build", icon="🛠️")
    return True


def need_user(v: View) -> bool:
    if v.user_id is not None:
        return False
    st.info("Pick a user in the sidebar, or create one on the **For you** page.")
    st.page_link(HOME_PAGE, label="For you: create a user", icon="🎬")
    return True
