"""The ``assistant`` command end to end, as a user runs it (separate processes)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from assistant.config import Settings
from tests.support import ROOT

pytestmark = pytest.mark.slow


def run(*args, index, timeout=300):
    env = {**os.environ, "ASSISTANT_INDEX": str(index)}
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_ingest_list_ask_remove(tmp_path, corpus):
    index = tmp_path / "index"
    first = run("ingest", str(corpus), "--json", index=index)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert len(summary["added"]) == 6 and summary["failed"] == [] and summary["chunks"] >= 6
    assert "indexed 6/6 files" in first.stderr  # progress on stderr

    again = run("ingest", str(corpus), index=index)
    assert again.returncode == 0
    assert "added 0, updated 0, unchanged 6, removed 0, failed 0" in again.stdout

    listed = run("list", "--json", index=index)
    docs = json.loads(listed.stdout)
    assert {d["source"] for d in docs} == {p.name for p in corpus.iterdir()}
    assert all(d["chunks"] >= 1 and d["indexed_at"] for d in docs)

    asked = run("ask", "What festival takes place in Bunol?", "--json", "--mode", "extractive",
                "--k", "3", index=index)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert "Tomatina" in answer["answer"] and not answer["abstained"]
    assert len(answer["citations"]) == 3
    assert [c["source"] for c in answer["citations"] if c["cited"]] == ["spain.pdf"]

    text = run("ask", "What festival takes place in Bunol?", "--mode", "extractive", index=index)
    assert "Tomatina" in text.stdout and "*[1] spain.pdf (p. 2" in text.stdout

    scoped = run("ask", "What is the capital of Belgium?", "--doc", "lighthouse.txt", "--json",
                 "--mode", "extractive", index=index)
    assert {c["source"] for c in json.loads(scoped.stdout)["citations"]} == {"lighthouse.txt"}

    removed = run("remove", "belgium.md", index=index)
    assert removed.returncode == 0 and "removed belgium.md" in removed.stdout
    assert "belgium.md" not in run("list", index=index).stdout
    assert run("remove", "belgium.md", index=index).returncode == 2


def test_remove_takes_only_what_list_shows(tmp_path, corpus):
    index = tmp_path / "index"
    assert run("ingest", str(corpus), index=index).returncode == 0
    for target in ("/", str(corpus)):
        refused = run("remove", target, index=index)
        assert refused.returncode == 2, refused.stderr
        assert "--folder" in refused.stderr or "filesystem root" in refused.stderr
    assert run("remove", "/", "--folder", index=index).returncode == 2
    assert len(json.loads(run("list", "--json", index=index).stdout)) == 6, "nothing was removed"
    out_of_range = run("ask", "What is Ghent?", "--k", "11", index=index)
    assert out_of_range.returncode == 2 and "from 1 to 10" in out_of_range.stderr
    whole = run("remove", str(corpus), "--folder", index=index)
    assert whole.returncode == 0 and whole.stdout.count("removed ") == 6
    assert "no documents indexed" in run("list", index=index).stdout


def test_exit_codes_for_failures_and_usage(tmp_path, corpus):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    result = run("ingest", str(corpus), index=tmp_path / "index")
    assert result.returncode == 1
    assert "FAILED broken.pdf: cannot parse" in result.stderr
    assert "added 6" in result.stdout
    assert run("ask", index=tmp_path / "index").returncode == 2  # missing question
    assert run("ask", "   ", index=tmp_path / "index").returncode == 2
    unknown = run("ask", "x?", "--doc", "nope.md", index=tmp_path / "index")
    assert unknown.returncode == 2 and "no indexed document" in unknown.stderr
    assert run("frobnicate", index=tmp_path / "index").returncode == 2


def test_default_corpus_is_seeds_and_answers_cite_it(tmp_path):
    index = tmp_path / "index"
    result = run("ingest", index=index)
    assert result.returncode == 0, result.stderr
    assert "added 1" in result.stdout
    asked = run("ask", "Which platform did the Ministry of State Security join?", "--json",
                index=index)
    answer = json.loads(asked.stdout)
    assert "WeChat" in answer["answer"] and not answer["abstained"]
    assert (answer["mode"], answer["backend"]) == ("extractive", "extractive"), "auto quotes strong evidence"
    assert any(c["cited"] and c["source"] == "mss-joins-wechat.txt" for c in answer["citations"])


def test_settings_change_refuses_until_rebuild(tmp_path, corpus):
    index = tmp_path / "index"
    assert run("ingest", str(corpus), index=index).returncode == 0
    db = sqlite3.connect(index / "catalog.sqlite3")
    db.execute("UPDATE meta SET value=json_set(value, '$.max_tokens', 999) WHERE key='settings'")
    db.commit()
    db.close()
    refused = run("ingest", str(corpus), index=index)
    assert refused.returncode == 1 and "--rebuild" in refused.stderr
    assert "max_tokens differ: max_tokens=999" in refused.stderr
    rebuilt = run("ingest", str(corpus), "--rebuild", "--json", index=index)
    assert rebuilt.returncode == 0 and len(json.loads(rebuilt.stdout)["added"]) == 6
    db = sqlite3.connect(index / "catalog.sqlite3")
    recorded = json.loads(db.execute("SELECT value FROM meta WHERE key='settings'").fetchone()[0])
    db.close()
    defaults = Settings.from_env(index_dir=index)
    assert (recorded["max_tokens"], recorded["overlap_tokens"]) == (defaults.chunk_tokens,
                                                                    defaults.overlap_tokens)
    assert run("ingest", str(corpus), index=index).returncode == 0, "the rebuilt index is accepted"


def test_chat_in_the_terminal(tmp_path):
    index = tmp_path / "index"
    assert run("ingest", index=index).returncode == 0
    env = {**os.environ, "ASSISTANT_INDEX": str(index)}
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "chat", "--mode", "extractive"],
        input="Which platform did the Ministry of State Security join?\nWhen did it join?\n\n",
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "WeChat" in result.stdout
    assert "understood as:" in result.stdout and "Monday" in result.stdout
    conversation = re.search(r"Conversation (\w+)", result.stdout).group(1)
    resumed = subprocess.run(  # later, another process: the conversation goes on where it was
        [sys.executable, "-m", "assistant", "chat", "--mode", "extractive", "--resume", conversation],
        input="Who joined?\n\n", capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.index("When did it join?") < resumed.stdout.index(f"Conversation {conversation}")
    shown = run("conversations", "show", conversation, "--json", index=index)
    assert [t["question"] for t in json.loads(shown.stdout)["turns"]] == [
        "Which platform did the Ministry of State Security join?", "When did it join?", "Who joined?"]
    exported = run("conversations", "export", conversation, index=index)
    assert exported.stdout.startswith("# Which platform") and "[^1]:" in exported.stdout
    unknown = run("chat", "--resume", "nope", index=index)
    assert unknown.returncode == 2 and "no conversation 'nope'" in unknown.stderr


def test_collections_from_the_command_line(tmp_path, corpus):
    index = tmp_path / "index"
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping so they do not drift apart.\n")
    assert run("ingest", str(corpus), index=index).returncode == 0
    made = run("ingest", str(notes), "--collection", "animals", index=index)
    assert made.returncode == 0, made.stderr
    listed = json.loads(run("collections", "--json", index=index).stdout)
    assert [(c["name"], c["documents"]) for c in listed] == [("default", 6), ("animals", 1)]
    both = run("ask", "Why do sea otters hold hands while sleeping?", "--collection", "default",
               "--collection", "animals", "--json", "--mode", "extractive", index=index)
    answer = json.loads(both.stdout)
    assert "drift apart" in answer["answer"]
    assert {(c["collection"], c["source"]) for c in answer["citations"] if c["cited"]} == {("animals", "otters.md")}
    assert run("collections", "rename", "animals", "zoo", index=index).returncode == 0
    assert run("list", "--collection", "zoo", index=index).stdout.startswith("otters.md")
    for args, message in ((("ask", "x?", "--collection", "../etc"), "cannot name a collection"),
                          (("ask", "x?", "--collection", "a/b"), "cannot name a collection"),
                          (("list", "--collection", "ghost"), "no collection 'ghost'"),
                          (("collections", "delete", "zoo"), "add --yes"),
                          (("collections", "delete", "default", "--yes"), "cannot be deleted")):
        refused = run(*args, index=index)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)
    assert not (index / "collections" / "ghost").exists()
    assert run("collections", "delete", "zoo", "--yes", index=index).returncode == 0
    assert [c["name"] for c in json.loads(run("collections", "--json", index=index).stdout)] == ["default"]
    assert len(json.loads(run("list", "--json", index=index).stdout)) == 6, "the default collection is untouched"


def test_watch_keeps_a_collection_in_step(tmp_path):
    index, folder = tmp_path / "index", tmp_path / "watched"
    folder.mkdir()
    (folder / "herons.md").write_text("# Herons\n\nGrey herons nest in colonies called heronries.\n")
    env = {**os.environ, "ASSISTANT_INDEX": str(index)}
    watcher = subprocess.Popen([sys.executable, "-m", "assistant", "watch", str(folder), "--collection", "birds"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        def sources():
            listed = run("list", "--json", "--collection", "birds", index=index)
            return sorted(d["source"] for d in json.loads(listed.stdout)) if listed.returncode == 0 else []

        _until(lambda: sources() == ["herons.md"])
        (folder / "owls.md").write_text("# Owls\n\nSnowy owls hunt lemmings on the tundra.\n")
        (folder / "herons.md").unlink()
        (folder / "broken.pdf").write_bytes(b"not a pdf at all")  # unreadable: reported, the rest goes on
        _until(lambda: sources() == ["owls.md"])
        answer = run("ask", "What do snowy owls hunt?", "--collection", "birds", "--mode", "extractive",
                     index=index)
        assert "lemmings" in answer.stdout
    finally:
        # SIGTERM: a test run in the background has SIGINT ignored, and its children with it
        watcher.send_signal(signal.SIGTERM)
        try:
            out, _ = watcher.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
            pytest.fail(f"SIGTERM did not stop `assistant watch`: {watcher.communicate()[0][-2000:]}")
    assert watcher.returncode == 0 and out.rstrip().endswith("stopped"), out
    assert "1 failed (broken.pdf: " in out, out  # the unreadable file is named; the others were synced
    missing = run("watch", str(tmp_path / "nowhere"), index=index)
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def _until(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.5)
