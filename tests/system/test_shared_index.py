"""One index shared by several processes through servers: the catalog in PostgreSQL (a throwaway
cluster), the vectors in ``chroma run``; two chat servers, ingests and Python processes, each with a
local folder of its own, as on different machines (docs/deploy.md)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.corpus import build_corpus
from tests.support.postgres import PASSWORD
from tests.support.servers import gradio_client, serve_index, stop_process

pytestmark = pytest.mark.slow

QUESTION = "Which platform did the Ministry of State Security join?"


def run_cli(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assistant", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def machine(tmp_path, name: str, catalog: str, chroma: str | None) -> dict:
    """The environment of one process "on its own machine": its own local folder."""
    env = {"ASSISTANT_INDEX": str(tmp_path / name / "index"), "ASSISTANT_CATALOG_URL": catalog,
           "ASSISTANT_BACKEND": "none"}
    return {**env, "ASSISTANT_CHROMA_URL": chroma} if chroma else env


def ask(url: str, question: str) -> dict:
    return gradio_client(url).predict(question, 4, "extractive", None, None, api_name="/ask")


def test_two_chat_servers_and_ingests_share_one_index(tmp_path, postgres_url, chroma_server):
    corpus = build_corpus(tmp_path / "corpus")
    first = run_cli("ingest", str(corpus), env=machine(tmp_path, "ingest", postgres_url, chroma_server))
    assert first.returncode == 0, first.stderr[-3000:]
    servers = [serve_index(tmp_path / m / "index", tmp_path / f"{m}.log", "--no-seeds",
                           env=machine(tmp_path, m, postgres_url, chroma_server)) for m in ("a", "b")]
    try:
        for url, _ in servers:
            answer = ask(url, QUESTION)
            assert "WeChat" in answer["answer"], answer
            assert {c["source"] for c in answer["citations"] if c["cited"]} == {"seed.txt"}
        # a new document, ingested elsewhere: the very next question on either server finds it
        news = tmp_path / "news"
        news.mkdir()
        (news / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping so they do not drift.\n")
        added = run_cli("ingest", str(news), env=machine(tmp_path, "other", postgres_url, chroma_server))
        assert added.returncode == 0, added.stderr[-3000:]
        for url, _ in servers:
            answer = ask(url, "Why do sea otters hold hands while sleeping?")
            assert "drift" in answer["answer"] and not answer["abstained"]
        # a conversation kept by one process is listed by both servers
        from assistant import Assistant, Settings
        from index.embedding.embedder import make_embedder

        env = machine(tmp_path, "python", postgres_url, chroma_server)
        bot = Assistant(Settings.from_env(env=env), embedder=make_embedder())
        conv = bot.new_conversation()
        bot.chat(QUESTION, None, conversation=conv.id)
        for url, _ in servers:
            listed = gradio_client(url).predict(api_name="/conversations")
            assert [(c["id"], c["questions"]) for c in listed] == [(conv.id, [QUESTION])]
        # one server killed: the other keeps answering
        servers[0][1].send_signal(signal.SIGKILL)
        servers[0][1].wait(30)
        assert "WeChat" in ask(servers[1][0], QUESTION)["answer"]
    finally:
        for _, proc in servers:
            stop_process(proc)


def test_postgresql_restarted_mid_ingest_fails_clearly_then_a_rerun_converges(tmp_path, postgres_url,
                                                                              postgres_cluster):
    corpus = build_corpus(tmp_path / "corpus")
    for i in range(60):
        (corpus / f"note-{i:02d}.txt").write_text(f"Note {i}. " + "The harbour ledger lists ships. " * 400)
    env = machine(tmp_path, "ingest", postgres_url, None)
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "ingest", str(corpus)], env={**os.environ, **env},
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # progress: a line a second
        seen.append(line)
        if line.startswith("indexed ") and "note-" in line:
            postgres_cluster.restart()
            break
    out, err = proc.communicate(timeout=600)
    err = "".join(seen) + err
    assert proc.returncode == 1, err[-3000:]
    # whichever statement met the restart: a dropped connection, the writer lock gone with it,
    # or a new connection refused while the server shut down or started
    said = err.splitlines()[-1]
    assert re.search(r"lost the (connection to the catalog database|writer lock)|the server is restarting|"
                     r"the server does not answer", said), said
    assert PASSWORD not in err + out
    again = run_cli("ingest", str(corpus), env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    listed = run_cli("list", "--json", env=env)
    assert listed.returncode == 0 and listed.stdout.count('"source"') == 66, listed.stdout[-2000:]

    from index.embedding.embedder import make_embedder
    from index.index import Index

    index = Index(tmp_path / "ingest" / "index", make_embedder(), catalog_url=postgres_url)
    assert index.catalog.chunk_ids() == index.store.ids(), "catalog and vectors agree"
    index.close()


def test_the_cli_names_a_refused_login_without_the_password(tmp_path, postgres_cluster):
    url = postgres_cluster.url("postgres", password="wrong-" + PASSWORD)
    done = run_cli("list", env={"ASSISTANT_INDEX": str(tmp_path / "idx"), "ASSISTANT_CATALOG_URL": url})
    assert done.returncode == 1
    assert "refused the login" in done.stderr and PASSWORD not in done.stderr + done.stdout, done.stderr


def test_migrate_copies_a_folder_into_the_servers_with_the_same_answers(tmp_path, postgres_url, chroma_server):
    corpus = build_corpus(tmp_path / "corpus")
    folder = {"ASSISTANT_DATA": str(tmp_path / "data"), "ASSISTANT_BACKEND": "none"}
    assert run_cli("ingest", str(corpus), env=folder).returncode == 0
    assert run_cli("collections", "create", "notes", env=folder).returncode == 0
    assert run_cli("ingest", str(corpus / "seed.txt"), "--collection", "notes", env=folder).returncode == 0
    before = run_cli("ask", QUESTION, "--json", env=folder)
    done = run_cli("migrate", "--catalog-url", postgres_url, "--chroma-url", chroma_server, env=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "default: copied 6 documents" in done.stdout and "notes: copied 1 documents" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    shared = machine(tmp_path, "server", postgres_url, chroma_server)
    after = run_cli("ask", QUESTION, "--json", env=shared)
    strip = lambda text: text.replace('"backend"', "")  # noqa: E731
    assert after.returncode == 0 and strip(after.stdout) == strip(before.stdout)
    listed = run_cli("collections", env=shared)
    assert listed.stdout.split()[:1] == ["default"] and "notes\t1 documents" in listed.stdout
    rerun = run_cli("migrate", "--catalog-url", postgres_url, "--chroma-url", chroma_server, env=folder)
    assert "default: copied 0 documents (0 chunks), 6 already there" in rerun.stdout, rerun.stdout
