"""The server under a concurrent CLI ingest, under 20 concurrent sessions, and behind a login."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time

import httpx
import pytest

from assistant.pipeline.retrieval import terms
from index.index import Index
from index.ingest import ingest
from tests.support import ROOT
from tests.support.corpus import build_corpus
from tests.support.servers import serve_index, stop_process

pytestmark = pytest.mark.slow
REPORT = ROOT / "tests" / "artifacts" / "load.json"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    url, proc = serve_index(root / "index", root / "server.log")  # indexes seeds/ first
    yield url, root
    stop_process(proc)


def _client(url, **kw):
    from gradio_client import Client

    return Client(url, verbose=False, **kw)


def test_ui_keeps_answering_while_the_cli_ingests(served):
    url, root = served
    corpus = build_corpus(root / "corpus")
    (corpus / "owls.md").write_text("# Owls\n\nThe snowy owl of Quillfeather Bay nests on the "
                                    "tundra and hunts lemmings at noon.\n")
    env = {**os.environ, "ASSISTANT_INDEX": str(root / "index")}
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "ingest", str(corpus)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    c = _client(url)
    answers = []
    while proc.poll() is None:  # the UI answers throughout
        a = c.predict("Which platform did the Ministry of State Security join?", 4, "extractive",
                      None, api_name="/ask")
        answers.append(a)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert answers and all("WeChat" in a["answer"] for a in answers)
    fresh = c.predict("Where does the snowy owl of Quillfeather Bay nest?", 4, "extractive", None,
                      api_name="/ask")
    assert "tundra" in fresh["answer"], "new documents are seen once committed"
    assert {x["source"] for x in fresh["citations"] if x["cited"]} == {"owls.md"}
    ids = [x["chunk_id"] for x in fresh["citations"]]
    assert len(ids) == len(set(ids))
    # ... and through the dense side, not only by keyword: this question shares no word with
    # owls.md, so only the server's vectors can retrieve it
    question = "Which white bird of prey breeds in the arctic?"
    assert not set(terms(question)) & set(terms((corpus / "owls.md").read_text()))
    a = c.predict(question, 4, "extractive", ["owls.md"], api_name="/ask")
    assert any(x["source"] == "owls.md" for x in a["citations"]), "the very next question sees it"


def test_the_dense_side_sees_what_another_process_ingested(tmp_path, embedder):
    """A serving index finds, by vector search alone, a document a CLI ingest in another
    process added after it opened: on the very next search, without a restart."""
    index = Index(tmp_path / "index", embedder)
    ingest(index, [build_corpus(tmp_path / "corpus")])
    question = "Which enormous sea creature is the heaviest?"
    vector = embedder.embed([question])[0]
    assert index.store.query(vector, 3)  # its search graph is loaded, as in a serving chat
    new = tmp_path / "new"
    new.mkdir()
    text = "# Blue whales\n\nBlue whales weigh up to 190 tonnes, more than any animal that ever lived.\n"
    (new / "whales.md").write_text(text)
    assert not set(terms(question)) & set(terms(text)), "keyword search must not be able to find it"
    env = {**os.environ, "ASSISTANT_INDEX": str(tmp_path / "index")}
    done = subprocess.run([sys.executable, "-m", "assistant", "ingest", str(new)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    whale = next(d for d in index.catalog.documents() if d.source == "whales.md")
    nearest = [cid for cid, _ in index.store.query(vector, 3)]
    assert any(cid.startswith(whale.doc_id) for cid in nearest), "the very next search sees it"
    only = index.store.query(vector, 3, doc_ids=[whale.doc_id])
    assert [cid.startswith(whale.doc_id) for cid, _ in only] == [True]
    index.close()


def test_twenty_concurrent_sessions(served):
    url, _ = served
    questions = [
        ("Which platform did the Ministry of State Security join?", "When did it join?", "Monday"),
        ("When do the security law reforms take effect?", "What does the overhaul reflect?", None),
    ]
    results, errors, latencies = {}, [], []

    def session(i):
        try:
            c = _client(url)
            first, follow, fact = questions[i % 2]
            t0 = time.perf_counter()
            h = c.predict(f"{first}", [], 4, "generate", "bundled", [], api_name="/chat")[0]
            latencies.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            h = c.predict(follow, h, 4, "generate", "bundled", [], api_name="/chat")[0]
            latencies.append(time.perf_counter() - t0)
            results[i] = (h, first, fact)
        except Exception as exc:  # recorded, then asserted empty
            errors.append(repr(exc))

    started = time.perf_counter()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    elapsed = time.perf_counter() - started
    assert not errors, errors
    assert len(results) == 20
    for i, (history, first, fact) in results.items():
        assert len(history) == 4, "each session sees only its own two turns"
        first_text = history[0]["content"]
        first_text = first_text if isinstance(first_text, str) else first_text[0]["text"]
        assert first_text == first
        if fact:
            last = history[-1]["content"]
            last = last if isinstance(last, str) else " ".join(p["text"] for p in last)
            assert fact in last
    assert httpx.get(url, timeout=10).status_code == 200, "the server stays up"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({
        "sessions": 20, "requests": len(latencies), "seconds": round(elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(sorted(latencies)[int(0.95 * len(latencies)) - 1], 2),
    }, indent=1))


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    url, proc = serve_index(root / "index", root / "server.log", "--auth", "reader:s3cret")
    yield url
    stop_process(proc)


def test_login_cannot_be_bypassed_through_the_api(locked):
    base = locked.rstrip("/")
    for path in ("/config", "/gradio_api/info", "/gradio_api/call/ask", "/gradio_api/queue/join",
                 "/gradio_api/upload", "/gradio_api/file=README.md"):
        for method in ("GET", "POST"):
            r = httpx.request(method, base + path, json={"data": ["x"]}, timeout=10)
            assert r.status_code in (401, 403, 404, 405), (method, path, r.status_code)
            assert "WeChat" not in r.text
    with pytest.raises(Exception):
        _client(locked)
    with pytest.raises(Exception):
        _client(locked, auth=("reader", "wrong"))
    answer = _client(locked, auth=("reader", "s3cret")).predict(
        "Which platform did the Ministry of State Security join?", 4, "extractive", None,
        api_name="/ask")
    assert "WeChat" in answer["answer"]
