"""mmrec dashboard entry: ``streamlit run streamlit_app.py`` (or ``python main.py``).

Navigation over the thin pages in ``pages/`` and the sidebar every page shares (user, modality
weights, exploration rate, filters, reset). Models load once via ``mmrec.ui.loaders.get_service``.
"""

import os

import streamlit as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # explanations re-enter the encoders: never download

from mmrec.ui import loaders  # noqa: E402
from mmrec.ui.grid import CALM_CSS  # noqa: E402

st.set_page_config(page_title="mmrec — movies for you", page_icon="🎬", layout="wide")
st.html(CALM_CSS)  # no fade of every element on each rerun (its repaint cost CPU per click)

home = st.Page(loaders.HOME_PAGE, title="For you", icon="🎬", default=True)
pages = [
    home,
    st.Page(loaders.EXPLORE_PAGE, title="Explore", icon="🧭", url_path="explore"),
    st.Page(loaders.WHY_PAGE, title="Why this pick", icon="💡", url_path="why"),
    st.Page(loaders.LEARNING_PAGE, title="Learning", icon="📈", url_path="learning"),
    st.Page(loaders.RESULTS_PAGE, title="Results", icon="🏁", url_path="results"),
    st.Page(loaders.DATA_PAGE, title="Data", icon="🗂️", url_path="data"),
]
page = st.navigation(pages, position="sidebar")
# For you's grid is a fragment (a rating reruns only the grid): it writes the rating count
loaders.render_sidebar(count_here=page.url_path != home.url_path)
page.run()
