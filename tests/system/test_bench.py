"""The benchmark runs (tiny sizes; its numbers are not checked: benchmarks measure, tests assert)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow


def test_bench_runs_end_to_end_on_tiny_corpora(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--small", "--out", str(out),
         "resync", "retrieval", "bigfile"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "BENCH_CACHE": str(tmp_path / "cache")},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["resync"]["model_loaded"] is False
    assert results["resync"]["unchanged_files"] == 30 and results["resync"]["removed"] == 1
    for size in ("10k", "100k"):
        assert results["retrieval"][size]["hybrid"]["n"] == 60, results["retrieval"]
    assert results["bigfile"]["big_file"].get("added") == 1, results["bigfile"]
    assert "| Re-sync, one file changed |" in run.stdout


def test_the_shared_index_benchmark_runs_on_both_catalogs(postgres_cluster):
    """bench/shared_index.py's retrieval parts, at 300 chunks (it starts its own cluster: the
    fixture only makes sure PostgreSQL is there)."""
    for part in ("latency", "keywords"):
        run = subprocess.run([sys.executable, str(ROOT / "bench" / "shared_index.py"), part, "--chunks", "300"],
                             capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert run.returncode == 0, run.stderr[-3000:]
        rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        assert [(r["catalog"], r["chunks"]) for r in rows] == [("sqlite", 300), ("postgresql", 300)], run.stdout
        assert all(r["keyword"]["n"] == 200 for r in rows)
