"""The Streamlit dashboard's shared code: ``loaders`` (cached service, sidebar, safe rendering).

Pages live in ``pages/`` and the entry is ``streamlit_app.py``; neither holds ML code.
"""
