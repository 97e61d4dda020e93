"""Server defaults (issue 19): a foreign Host header cannot open the app's websocket (DNS
rebinding), error details stay on the server, and the settings reach the server however it is
started (``streamlit run`` from the repository, ``python main.py`` from anywhere).

The websocket test talks to a real ``streamlit run`` on 127.0.0.1 with a raw HTTP upgrade
request: ``Host: evil.example`` with a matching ``Origin`` (what a rebinding page sends) must be
refused, ``Host: 127.0.0.1`` / ``localhost`` accepted (101 Switching Protocols).
"""

from __future__ import annotations

import base64
import os
import socket
import tomllib
from pathlib import Path

import pytest

from mmrec.config import UIConfig
from mmrec.ui import browser as B

REPO = Path(__file__).resolve().parents[2]


def upgrade_status(port: int, host: str) -> str:
    """Status line the server answers to a websocket upgrade sent with this Host header."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Origin: http://{host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(request.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def test_repository_server_settings():
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert set(cfg["server"]["allowedHosts"]) == set(UIConfig().allowed_hosts)
    assert cfg["client"]["showErrorDetails"] == UIConfig().error_details == "none"
    assert cfg["server"]["address"] == "127.0.0.1"


def test_main_passes_the_server_defaults():
    import main

    argv = main.streamlit_argv(None, None, [])
    for host in UIConfig().allowed_hosts:
        assert ["--server.allowedHosts", host] in [argv[i : i + 2] for i in range(len(argv))]
    assert argv[argv.index("--client.showErrorDetails") + 1] == "none"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("srv")
    log = root / "server.log"
    srv = B.AppServer(root / "no-data", root / "no-ckpt", root / "db.sqlite3", log_path=log)
    srv.start()
    yield srv
    srv.stop()


def test_foreign_host_header_is_refused(server):
    evil = upgrade_status(server.port, "evil.example")
    rebind = upgrade_status(server.port, "attacker.127.0.0.1.nip.io")
    ok = upgrade_status(server.port, "127.0.0.1")
    local = upgrade_status(server.port, "localhost")
    print(f"\nSERVER Host evil.example -> {evil!r}; 127.0.0.1 -> {ok!r}; localhost -> {local!r}")
    assert " 101 " in ok and " 101 " in local
    assert " 101 " not in evil and " 101 " not in rebind


def test_main_py_from_another_folder_keeps_the_host_check(tmp_path):
    """``python main.py`` started outside the repository (no .streamlit/config.toml there)."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = B.free_port()
    env = dict(os.environ, MMREC_DATA=str(tmp_path / "none"), MMREC_DB=str(tmp_path / "db"))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        assert " 101 " in upgrade_status(port, "127.0.0.1")
        assert " 101 " not in upgrade_status(port, "evil.example")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
