"""The browser chat: a real server process driven by gradio_client and by headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from assistant.types import ANSWER_VERSION

from assistant.interfaces.ui import App, render_sources, safe_upload_name
from tests.support import ROOT
from tests.support.corpus import build_corpus
from tests.support.servers import gradio_client as client, serve_index, stop_process

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "tests" / "artifacts"
HOSTILE_NAME = '<img src=x onerror="window.__pwned=4">.md'
HOSTILE_TEXT = (
    "# Zanzibar beacon\n\n"
    "The Zanzibar beacon is <script>window.__pwned=1</script> very bright.\n\n"
    'The Zanzibar beacon shines <img src=x onerror="window.__pwned=2"> every single night.\n\n'
    "Read [the Zanzibar manual](javascript:window.__pwned=3) for more.\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    corpus = build_corpus(root / "corpus")
    (corpus / HOSTILE_NAME).write_text(HOSTILE_TEXT)
    env = {**os.environ, "ASSISTANT_INDEX": str(root / "index"), "ASSISTANT_MAX_FILE_MB": "1"}
    ingest = subprocess.run([sys.executable, "-m", "assistant", "ingest", str(corpus)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    url, proc = serve_index(root / "index", root / "server.log", "--no-seeds",
                            env={"ASSISTANT_MAX_FILE_MB": "1"})
    yield url
    stop_process(proc)


def chat(c, message, history):
    shown = c.predict(message, history, 4, "generate", "bundled", [], api_name="/chat")[0]
    return shown


def text_of(message) -> str:
    content = message["content"]
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content)
    return content


# ------------------------------------------------------------------ API (gradio_client)
def test_api_returns_the_cli_json(server):
    answer = client(server).predict("When was Hollowmere Lighthouse first lit?", 4, "generate", None,
                                    api_name="/ask")
    assert answer["version"] == ANSWER_VERSION and not answer["abstained"]
    assert "1871" in answer["answer"]
    assert {c["source"] for c in answer["citations"] if c["cited"]} == {"lighthouse.txt"}
    expected = {"version", "question", "rewritten_question", "answer", "abstained", "kind", "lead", "mode",
                "backend", "citations"}
    assert set(answer) == expected


def test_follow_up_is_rewritten_and_answered(server):
    c = client(server)
    history = chat(c, "Which platform did the ministry join?", [])
    assert "WeChat" in text_of(history[-1])
    history = chat(c, "When did it join?", history)
    last = text_of(history[-1])
    assert "understood as:" in last
    assert "Monday" in last
    assert len(history) == 4


def test_off_topic_says_so(server):
    history = chat(client(server), "What is the capital of France?", [])
    assert "do not contain" in text_of(history[-1])


def _documents(c):
    status, table = c.predict(api_name="/documents")[:2]
    return status, [row[0] for row in table["data"]]


def test_upload_ask_remove(server, tmp_path):
    from gradio_client import handle_file

    c = client(server)
    path = tmp_path / "otters.md"
    path.write_text("# Sea otters\n\nSea otters hold hands while sleeping so they do not drift apart.\n")
    status, _ = c.predict([handle_file(str(path))], api_name="/upload")
    assert "Indexing started" in status
    deadline = time.monotonic() + 120
    while True:
        status, names = _documents(c)
        if "otters.md" in names and not status.startswith("Indexing…"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert "1 added" in status
    answer = c.predict("Why do sea otters hold hands?", 4, "extractive", ["otters.md"], api_name="/ask")
    assert "drift apart" in answer["answer"]
    assert c.predict("otters.md", False, api_name="/remove") == "Removed otters.md."
    assert "otters.md" not in _documents(c)[1]


def test_api_refuses_removing_the_root_or_a_folder_unconfirmed(server):
    c = client(server)
    before = _documents(c)[1]
    assert len(before) >= 7
    refused = c.predict("/", True, api_name="/remove")
    assert refused.startswith("Not removed:") and "filesystem root" in refused
    refused = c.predict(str(ROOT), False, api_name="/remove")
    assert refused.startswith("Not removed:") or "is not indexed" in refused
    assert _documents(c)[1] == before, "nothing was removed"


def test_api_refuses_k_out_of_range(server):
    from gradio_client.exceptions import AppError

    c = client(server)
    for k in (0, 11, 50):
        with pytest.raises(AppError, match="from 1 to 10"):
            c.predict("When was Hollowmere Lighthouse first lit?", k, "extractive", None, api_name="/ask")
    with pytest.raises(AppError, match="greater than maximum value 10"):  # the slider's own check
        c.predict("When was Hollowmere Lighthouse first lit?", [], 50, "extractive", "bundled", [],
                  api_name="/chat")


def test_disallowed_and_oversized_uploads_are_refused(server, tmp_path):
    from gradio_client import handle_file

    c = client(server)
    before = _documents(c)[1]
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ...")
    big = tmp_path / "big.txt"
    big.write_text("word " * 300_000)  # 1.5 MB, over the 1 MB limit this server has
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Invalid file type.*'.txt'"):  # gradio refuses it first
        c.predict([handle_file(str(exe))], api_name="/upload")
    status, _ = c.predict([handle_file(str(big))], api_name="/upload")
    assert "big.txt: 1.5 MB is over the 1.0 MB limit" in status
    assert _documents(c)[1] == before
    app_side, refused = App.__new__(App), None
    app_side.allowed, app_side.max_upload_bytes = (".txt",), 10
    app_side.upload_dir = exe.parent / "uploads"
    _, refused = app_side.accept_uploads([str(exe)])
    assert refused == ["tool.exe: type .exe is not allowed (allowed: .txt)"]


def test_two_sessions_keep_separate_histories(server):
    results = {}

    def session(name, first, follow):
        try:
            c = client(server)
            history = chat(c, first, [])
            results[name] = chat(c, follow, history)
        except Exception as exc:  # shown by the assertion below, not lost in the thread
            results[name] = exc

    threads = [
        threading.Thread(target=session, args=("ministry", "Which platform did the ministry join?",
                                                "When did it join?")),
        threading.Thread(target=session, args=("lighthouse", "Tell me about Hollowmere Lighthouse.",
                                                "How tall is it?")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    failed = {name: r for name, r in results.items() if isinstance(r, Exception)}
    assert len(results) == 2 and not failed, f"sessions failed or did not finish: {failed or results}"
    ministry = " ".join(text_of(m) for m in results["ministry"])
    lighthouse = " ".join(text_of(m) for m in results["lighthouse"])
    assert "Monday" in ministry and "Hollowmere" not in ministry
    assert "41 met" in lighthouse and "WeChat" not in lighthouse


# ------------------------------------------------------------------ plumbing (no server)
def _app(tmp_path):
    from assistant import Assistant, Settings
    from index.embedding.embedder import HashEmbedder

    bot = Assistant(Settings.from_env(index_dir=tmp_path / "i", backend="none"), embedder=HashEmbedder())
    return App(bot, upload_dir=tmp_path / "uploads")


def _idle(app, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while app.job.running:
        assert time.monotonic() < deadline, app.status()
        time.sleep(0.05)


def test_uploads_while_indexing_runs_are_queued_and_indexed(tmp_path):
    app = _app(tmp_path)
    first, second = tmp_path / "herons.md", tmp_path / "otters.md"
    first.write_text("# Herons\n\nHerons wait by the pond at dawn.\n")
    second.write_text("# Otters\n\nOtters hold hands while they sleep.\n")
    busy, release = threading.Event(), threading.Event()
    real = app.bot.ingest

    def long_ingest(paths, **kwargs):  # the first run has read the folder and is still going
        report = real(paths, **kwargs)
        if not busy.is_set():
            busy.set()
            release.wait(120)
        return report

    app.bot.ingest = long_ingest
    assert app.accept_uploads([str(first)]) == (["herons.md"], [])
    assert app.start_ingest() == "Indexing started."
    assert busy.wait(120)
    assert app.accept_uploads([str(second)]) == (["otters.md"], [])
    assert "queued" in app.start_ingest()
    release.set()
    _idle(app)
    assert sorted(app.sources()) == ["herons.md", "otters.md"], app.status()
    assert "1 added, 0 updated, 1 unchanged" in app.status()


def test_remove_box_removes_only_what_is_listed(tmp_path):
    app = _app(tmp_path)
    upload = tmp_path / "notes.txt"
    upload.write_text("Notes uploaded through the browser about the harbour.")
    app.accept_uploads([str(upload)])
    app.start_ingest()
    _idle(app)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("Notes in another folder about the lighthouse.")
    app.bot.ingest([other])
    before = app.documents_table()
    assert "filesystem root" in app.remove("/", True)
    assert "2 indexed documents are called 'notes.txt'" in app.remove("notes.txt")
    assert "--folder" in app.remove(str(other))
    assert app.documents_table() == before
    assert app.remove(str(other / "notes.txt")) == "Removed notes.txt."
    assert (tmp_path / "uploads" / "notes.txt").exists(), "a same-named upload stays"
    assert app.remove("notes.txt") == "Removed notes.txt."
    assert not (tmp_path / "uploads" / "notes.txt").exists(), "the removed upload goes too"
    assert app.sources() == []


@pytest.mark.parametrize("name, safe", [("../../x.txt", "x.txt"), ("..\\..\\evil.md", "evil.md"),
                                         (".hidden.txt", "hidden.txt"), ("a/b/c.pdf", "c.pdf")])
def test_upload_names_cannot_escape(name, safe):
    assert safe_upload_name(name) == safe


def test_upload_to_dotdot_is_refused_or_contained(tmp_path, embedder):
    from assistant import Assistant, Settings

    bot = Assistant(Settings.from_env(index_dir=tmp_path / "i", backend="none"), embedder=embedder)
    app = App(bot, upload_dir=tmp_path / "uploads")
    src = tmp_path / "payload.txt"
    src.write_text("hello")

    class Upload(str):
        orig_name = "../../../etc/escape.txt"

    accepted, refused = app.accept_uploads([Upload(str(src))])
    assert accepted == ["escape.txt"] and not refused
    assert (tmp_path / "uploads" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_sources_panel_escapes_document_text():
    from assistant.types import Answer, Citation

    cite = Citation(1, True, "d", "c", "<b>x</b>.md", None, None, 0, 10, "<script>x</script>",
                    [[0, 8]], 0.03)
    html = render_sources(Answer("q", "<img src=x> [1]", False, "generate", "b", [cite]))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and 'href="#src-1"' in html


# ------------------------------------------------------------------ real browser
def _open(browser, url, requests):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (requests.append("DIALOG " + d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector("#question textarea")
    return page


def _ask(page, question):
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_selector("#sources .answer-text", timeout=120_000)
    page.wait_for_timeout(300)


def test_browser_shows_answer_marker_and_highlighted_passage(browser, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    page = _open(browser, server, requests)
    _ask(page, "Which platform did the Ministry of State Security join?")
    chat_text = page.inner_text("#chat")
    assert "WeChat" in chat_text
    marker = page.locator("#sources a.marker").first
    label = marker.inner_text()
    assert label.startswith("[") and label.endswith("]")
    n = label.strip("[]")
    passage = page.locator(f"#src-{n}")
    assert "cited" in passage.get_attribute("class")
    assert passage.locator("mark").count() >= 1
    assert "mss-joins-wechat" in passage.inner_text() or "seed.txt" in passage.inner_text()
    marker.click()
    assert page.evaluate("location.hash") == f"#src-{n}"
    page.screenshot(path=str(ARTIFACTS / "answer.png"), full_page=True)
    _only_local(requests, server)


def test_browser_runs_nothing_from_hostile_documents(browser, server):
    requests: list[str] = []
    page = _open(browser, server, requests)
    _ask(page, "What does the Zanzibar beacon do every night?")
    page.wait_for_timeout(1000)
    panel = page.inner_text("#sources")
    assert "<img src=x" in panel, "the payload is shown as text"
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_timeout(1500)
    assert HOSTILE_NAME in page.inner_text("#documents")
    box = page.locator("#remove-choice input")  # the viewer shows the document as text, too
    box.fill(HOSTILE_NAME)
    box.press("Enter")
    page.click("#open-document")
    page.wait_for_selector("#doc-viewer .doc-text", timeout=30_000)
    assert "<script>window.__pwned=1</script>" in page.inner_text("#doc-viewer")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not [r for r in requests if r.startswith("DIALOG")]
    page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
    _only_local(requests, server)


def test_browser_remove_box_needs_the_folder_box_and_never_takes_the_root(browser, server):
    requests: list[str] = []
    page = _open(browser, server, requests)
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#documents")
    before = _documents(client(server))[1]
    box = page.locator("#remove-choice input")
    box.fill("/")
    box.press("Enter")
    page.locator("#remove-folder input").check()
    page.click("#remove")
    page.wait_for_function(
        "document.querySelector('#status textarea').value.startsWith('Not removed')", timeout=30_000)
    assert "filesystem root" in page.input_value("#status textarea")
    assert _documents(client(server))[1] == before


def test_two_tabs_do_not_share_a_conversation(browser, server):
    requests: list[str] = []
    first = _open(browser, server, requests)
    _ask(first, "When was Hollowmere Lighthouse first lit?")
    second = _open(browser, server, requests)
    assert "Hollowmere" not in second.inner_text("#chat")
    assert "Hollowmere" in first.inner_text("#chat")


def _only_local(requests, server):
    host = server.split("/")[2]
    others = {r.split("/")[2] for r in requests if "://" in r and r.split("/")[2] != host
              and not r.startswith(("data:", "blob:"))}
    assert not others, f"the page contacted other hosts: {sorted(others)}"
    (ARTIFACTS / "requests.json").write_text(json.dumps(sorted(set(requests)), indent=1))
