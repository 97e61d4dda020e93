"""`python main.py` on a freshly started server: it binds to 127.0.0.1, and a deep link to every
page runs that page inside the app (navigation + the shared sidebar), the very first session
included.

Why the first session: a `pages/` folder beside the entry script makes Streamlit treat the app as
a legacy multipage app until some script run calls ``st.navigation``. Without main.py's
``PagesManager.uses_pages_directory = False`` the first deep link (``/explore``) on a fresh
server runs ``pages/explore.py`` alone, with no navigation and no sidebar. A browser-free
websocket session (Streamlit's own protobuf messages) checks each page in about a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

from mmrec.ui.browser import free_port

REPO = Path(__file__).resolve().parents[2]
# Every page the entry script registers, the non-default ones first: the first session of the
# fresh server deep-links to a page that is not the default one.
PAGES = ["explore", "why", "learning", "results", "data", ""]
SIDEBAR = 1  # delta_path[0]: 0 = main area, 1 = sidebar


def open_page(port: int, url_path: str, timeout: float = 60) -> dict:
    """Open one new session on ``/<url_path>`` as the browser does (a rerun with the page name
    from the address) and collect what the script run sent until it finished."""
    seen = {"navigation": None, "main": 0, "sidebar": 0, "exceptions": [], "finished": False}
    with connect(
        f"ws://127.0.0.1:{port}/_stcore/stream",
        subprotocols=["streamlit"],
        origin=f"http://127.0.0.1:{port}",
        open_timeout=timeout,
    ) as ws:
        msg = BackMsg()
        msg.rerun_script.CopyFrom(ClientState(query_string="", page_name=url_path))
        ws.send(msg.SerializeToString())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fwd = ForwardMsg()
            fwd.ParseFromString(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            kind = fwd.WhichOneof("type")
            if kind == "navigation":
                seen["navigation"] = fwd.navigation
            elif kind == "delta":
                path = list(fwd.metadata.delta_path)
                seen["sidebar" if path and path[0] == SIDEBAR else "main"] += 1
                element = fwd.delta.new_element
                if element.WhichOneof("type") == "exception":
                    seen["exceptions"].append(element.exception.message)
            elif kind == "script_finished":
                seen["finished"] = True
                break
    return seen


def test_main_serves_on_localhost_and_deep_links_every_page(tiny_built, tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        MMREC_DATA=tiny_built.paths.data_dir,
        MMREC_CHECKPOINTS=tiny_built.paths.checkpoints_dir,
        MMREC_DB=str(tmp_path / "r.sqlite3"),
        HF_HUB_OFFLINE="1",
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--port", str(port)],
        cwd=tmp_path,  # works from any folder
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, body = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert body == "ok", f"no health answer; exit code {proc.poll()}"
        for url_path in PAGES:
            seen = open_page(port, url_path)
            where = f"deep link /{url_path}"
            assert seen["finished"], f"{where}: the script run did not finish"
            nav = seen["navigation"]
            assert nav is not None, f"{where} ran without st.navigation (pages/ run alone)"
            # the app's own page list (a legacy run lists pages/*.py plus the entry script)
            named = {p.url_pathname for p in nav.app_pages if not p.is_default}
            assert named == set(PAGES) - {""}, (where, sorted(named))
            assert sum(p.is_default for p in nav.app_pages) == 1, where
            current = {p.page_script_hash: p for p in nav.app_pages}[nav.page_script_hash]
            if url_path:
                assert current.url_pathname == url_path, (where, current.url_pathname)
            else:
                assert current.is_default, (where, current.url_pathname)
            assert seen["sidebar"] > 0, f"{where}: no shared sidebar"
            assert seen["main"] > 0, f"{where}: the page drew nothing"
            assert not seen["exceptions"], (where, seen["exceptions"])
    finally:
        proc.terminate()
        try:
            out = proc.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
    # bound to 127.0.0.1 only: the server says so in its startup lines
    assert f"127.0.0.1:{port}" in out, out[-2000:]
