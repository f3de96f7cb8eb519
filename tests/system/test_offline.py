"""Offline: ingest and ask inside a network namespace with no network but loopback."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.offline import no_network_command, refuse_remote

pytestmark = pytest.mark.slow
SELECTED = 7  # tests in tests/system/test_ui.py the browser-flow selection below picks


def test_ingest_and_ask_without_network(tmp_path, corpus):
    py = shlex.quote(sys.executable)
    index = shlex.quote(str(tmp_path / "index"))
    script = f"""
set -e
ip link set lo up
test -z "$(ip route show)"   # no route off this machine
{py} -m assistant ingest {shlex.quote(str(corpus))} --index {index} --json > {tmp_path}/ingest.json
{py} -m assistant ask "When was Hollowmere Lighthouse first lit?" --index {index} --mode generate --json > {tmp_path}/ask.json
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    result = subprocess.run([*no_network_command(), "sh", "-c", script], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(json.loads((tmp_path / "ingest.json").read_text())["added"]) == 6
    answer = json.loads((tmp_path / "ask.json").read_text())
    assert "1871" in answer["answer"] and answer["backend"].startswith("bundled:")


def test_the_guard_refuses_connections_off_the_machine():
    """The test-wide guard (conftest) stops any connection to a non-loopback address."""
    with pytest.raises(ConnectionRefusedError, match="test guard"):
        refuse_remote("socket.connect", (None, ("192.0.2.1", 443)))
    refuse_remote("socket.connect", (None, ("127.0.0.1", 8000)))
    refuse_remote("socket.connect", (None, ("::1", 8000, 0, 0)))
    refuse_remote("socket.connect", (None, "/run/some.sock"))


def test_server_and_browser_flow_without_network(tmp_path):
    """The browser-chat tests (server process, gradio_client, headless Chromium) in a namespace
    with nothing but loopback, under the same connection guard."""
    py = shlex.quote(sys.executable)
    tests = "tests/system/test_ui.py"
    selection = "api_returns or follow_up or upload_ask or browser or tabs"  # SELECTED tests
    script = f"""
set -e
ip link set lo up
test -z "$(ip route show)"
{py} -m pytest -q -p no:cacheprovider {tests} -k {shlex.quote(selection)}
"""
    result = subprocess.run([*no_network_command(), "sh", "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]  # e.g. "7 passed, 13 deselected in 41.20s"
    # exactly the selected tests, all passed: none skipped, none failing, none missing
    assert re.fullmatch(rf"{SELECTED} passed, \d+ deselected in [\d.]+s( \([\d:]+\))?", summary), summary
