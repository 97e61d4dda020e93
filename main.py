"""``python main.py``: serve the dashboard (the same app as ``streamlit run streamlit_app.py``).

Binds to ``UIConfig.address``:``UIConfig.port`` (127.0.0.1:5000 by default); ``--address`` and
``--port`` override them. ``MMREC_DATA`` / ``MMREC_CHECKPOINTS`` / ``MMREC_DB`` /
``MMREC_CONFIG`` pass through the environment to the app unchanged. ``--setup`` (what
``make run`` uses) also starts ``python -m mmrec setup`` beside the server: the dashboard is up
in seconds and shows the first build's progress until the models are ready.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent / "streamlit_app.py"


def _warm(cfg) -> None:
    try:
        from mmrec.rebuild import checkpoint_version
        from mmrec.ui.loaders import get_service

        ckpt = cfg.paths.checkpoints_dir
        svc = get_service(cfg.paths.data_dir, ckpt, cfg.paths.db_path, checkpoint_version(ckpt))
    except Exception as exc:  # not built yet, bad folder: the app itself says so
        print(f"mmrec: models not preloaded ({type(exc).__name__}: {exc})", file=sys.stderr)
        return
    try:
        # the explanation encoders too: the first "Why this pick" should not load them (only
        # the server does this; an in-process AppTest or a library user does not)
        svc.warm_explainer()
    except Exception as exc:  # the explanation itself reports what is wrong
        print(f"mmrec: explanation encoders not preloaded ({type(exc).__name__}: {exc})")


def streamlit_argv(port, address, extra, ui=None) -> list[str]:
    """The ``streamlit run`` command line: address, port and the safety defaults (Host
    allow-list, error details) from ``UIConfig``, so they hold from any working directory
    (``.streamlit/config.toml`` is only read from the current one)."""
    from mmrec.config import UIConfig

    ui = ui or UIConfig()
    hosts = [arg for host in ui.allowed_hosts for arg in ("--server.allowedHosts", host)]
    return [
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        address or ui.address,
        "--server.port",
        str(port or ui.port),
        "--server.headless",
        "true",
        *hosts,
        "--client.showErrorDetails",
        ui.error_details,
        "--runner.postScriptGC",
        "false",  # see .streamlit/config.toml: a full GC per script run stalls every session
        *(extra or []),
    ]


def serve(
    port: int | None = None, address: str | None = None, extra: list[str] | None = None
) -> int:
    """Run the Streamlit server in this process until it stops; returns its exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as stcli

    # The app navigates with st.navigation; without this, the first script run of the server
    # treats the `pages/` folder as a legacy multipage app (a deep link such as /explore would
    # then run that page alone, without the shared sidebar).
    PagesManager.uses_pages_directory = False

    from mmrec.ui import webroot

    webroot.install()  # the page names the server's base: no 404 probes on a deep link

    from mmrec.threads import use_serving_threads

    use_serving_threads()  # the serving process's torch thread policy, once, before any session

    from mmrec.config import load_config

    cfg = load_config()
    ui = cfg.ui
    # Load the catalog and models while the server boots, into the same st.cache_resource
    # entry the first session asks for: the first page does not wait for torch and the
    # checkpoints on top of the server start.
    threading.Thread(target=_warm, args=(cfg,), name="mmrec-warm", daemon=True).start()
    sys.argv = streamlit_argv(port, address, extra, ui)
    try:
        stcli.main()  # click command: exits via SystemExit
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def start_setup() -> subprocess.Popen:
    """``python -m mmrec setup`` as a child at lower CPU priority (the demo catalog and the
    models when missing; seconds when they are there). It writes its progress where the pages
    read it (``mmrec.progress``); its terminal output goes to ours."""

    def lower_priority():
        try:
            os.nice(10)
        except OSError:
            pass

    return subprocess.Popen(
        [sys.executable, "-m", "mmrec", "setup"],
        env=os.environ.copy(),
        preexec_fn=lower_priority if os.name == "posix" else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, help="default: UIConfig.port (5000)")
    parser.add_argument("--address", help="default: UIConfig.address (127.0.0.1)")
    parser.add_argument(
        "--setup",
        action="store_true",
        help="also build the demo catalog and the models if missing, beside the server (the "
        "pages show the build's progress and switch to recommendations when it is done)",
    )
    args, extra = parser.parse_known_args(argv)
    child = start_setup() if args.setup else None
    try:
        return serve(args.port, args.address, extra)
    finally:
        if child is not None and child.poll() is None:
            child.terminate()  # the server stopped: the build stops with it (rerun resumes)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
