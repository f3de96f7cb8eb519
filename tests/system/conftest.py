"""Fixtures of the system tests: a real headless Chromium (Debian's, never one a test tool downloads)
and a Chroma server (``chroma run``)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.support.servers import free_port, start_process, stop_process

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """``chroma run`` on a free port; yields its URL."""
    chroma = shutil.which("chroma") or os.path.join(os.path.dirname(sys.executable), "chroma")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma")
    proc = start_process([chroma, "run", "--path", str(folder / "data"), "--host", "127.0.0.1",
                          "--port", str(port)], f"http://127.0.0.1:{port}/api/v2/heartbeat", folder / "server.log")
    yield f"http://127.0.0.1:{port}"
    stop_process(proc)
