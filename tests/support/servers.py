"""Server processes for the system tests: a free port, start (waiting until it answers), stop,
and ``assistant serve`` over an index."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from tests.support import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(cmd: list[str], ready_url: str, log_path: Path, env: dict | None = None,
                  timeout: float = 180):
    """Start a server process and wait until ``ready_url`` answers; returns the Popen."""
    import subprocess
    import time

    import httpx

    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", **(env or {})}
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}: "
                               f"{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{cmd[:3]} did not become ready in {timeout} s")
        time.sleep(0.5)


def stop_process(proc) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(20)


def serve_index(index_dir: Path, log_path: Path, *extra: str, env: dict | None = None):
    """``assistant serve`` on a free port over ``index_dir``; returns (url, process)."""
    port = free_port()
    env = {"ASSISTANT_INDEX": str(index_dir), **(env or {})}
    proc = start_process([sys.executable, "-m", "assistant", "serve", "--port", str(port), *extra],
                         f"http://127.0.0.1:{port}/", log_path, env=env)
    return f"http://127.0.0.1:{port}/", proc


def gradio_client(url: str):
    """A gradio_client ``Client`` for a chat server (quiet)."""
    from gradio_client import Client

    return Client(url, verbose=False)
