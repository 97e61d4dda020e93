"""The Streamlit dashboard's shared code, one module per responsibility (``session``,
``callbacks``, ``sidebar``, ``status``, ``reports``, ``media_widgets``, ``safetext``, ``identity``,
``grid``), all re-exported by ``loaders`` so a page imports one name.

Pages live in ``pages/`` and the entry is ``streamlit_app.py``; neither holds ML code.
"""
