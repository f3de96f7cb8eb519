"""The opt-in server paths against real server processes on local ports:
an OpenAI-compatible LLM server (llama-cpp-python's own, with the bundled model)
and a Chroma server (``chroma run``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from assistant import Assistant, Settings
from assistant.llm.server import server_llm
from assistant.errors import LLMError
from assistant.llm.base import stream_text
from index.embedding.embedder import HashEmbedder
from index.errors import StoreUnavailable
from index.store import VectorStore
from tests.support import ROOT
from tests.support.corpus import build_corpus
from tests.support.servers import free_port

pytestmark = pytest.mark.slow


def test_answers_through_an_openai_compatible_server(tmp_path, embedder, llm_server):
    settings = Settings.from_env(index_dir=tmp_path / "index", llm_url=llm_server, llm_model="smollm2")
    assert settings.backend == "openai"
    bot = Assistant(settings, embedder=embedder)
    bot.ingest([build_corpus(tmp_path / "corpus")])
    streamed = list(bot.stream("Which platform did the Ministry of State Security join?"))
    answer = streamed[-1]
    assert len(streamed) > 3, "the server's answer streams in pieces"
    assert answer.backend == f"openai:smollm2@{llm_server}"
    assert not answer.abstained and "WeChat" in answer.answer
    assert {c.source for c in answer.cited} == {"seed.txt"}
    off_topic = bot.ask("What is the capital of France?")
    assert off_topic.abstained


def test_unreachable_llm_server_is_a_clear_error():
    llm = server_llm(f"http://127.0.0.1:{free_port()}/v1", timeout=5)
    with pytest.raises(LLMError, match="cannot reach the LLM server .* is it running"):
        list(stream_text(llm, [{"role": "user", "content": "hi"}], 5))


def test_index_in_a_chroma_server(tmp_path, embedder, chroma_server):
    corpus = build_corpus(tmp_path / "corpus")
    settings = Settings.from_env(index_dir=tmp_path / "index", chroma_url=chroma_server,
                                 backend="none")
    bot = Assistant(settings, embedder=embedder)
    report = bot.ingest([corpus])
    assert len(report.added) == 6
    assert not (tmp_path / "index" / "chroma").exists(), "vectors live in the server, not on disk"
    assert bot.index.store.ids() == bot.index.catalog.chunk_ids()
    answer = bot.ask("When was Hollowmere Lighthouse first lit?")
    assert "1871" in answer.answer and answer.mode == "extractive"
    assert len(bot.ingest([corpus]).unchanged) == 6
    bot.remove("lighthouse.txt")
    assert bot.index.store.ids() == bot.index.catalog.chunk_ids()
    # a second index folder on the same server gets its own collection
    other = Assistant(settings.with_(index_dir=tmp_path / "other"), embedder=embedder)
    assert other.index.store.count() == 0


# ----------------------------------------------------------------------------- Chroma server failures
class FlakyProxy:
    """A TCP proxy to a local port that can drop connections: ``fail_next(n)`` cuts every open
    connection and closes the next ``n`` it accepts without a word (a server restarting)."""

    def __init__(self, target_port: int | None):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.failures = 0
        self.dropped = 0
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def fail_next(self, n: int) -> None:
        with self.lock:
            self.failures = n
            for s in self.open:
                s.close()
            self.open.clear()

    def close(self) -> None:
        self.listener.close()
        self.fail_next(0)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.failures or self.target_port is None:
                    self.failures = max(0, self.failures - 1)
                    self.dropped += 1
                    conn.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                self.open.update((conn, upstream))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


def test_a_chroma_server_that_never_answers_fails_naming_it():
    dead = FlakyProxy(None)  # accepts, then hangs up on every request
    try:
        with pytest.raises(StoreUnavailable) as failed:
            VectorStore(HashEmbedder(), url=dead.url, attempts=3, backoff=0.01)
        assert f"the Chroma server at {dead.url}" in str(failed.value)
        assert "after 3 attempts" in str(failed.value)
        assert dead.dropped >= 3, "each attempt reached the server"
    finally:
        dead.close()


def test_the_cli_names_an_unreachable_chroma_server(tmp_path, corpus):
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "ASSISTANT_INDEX": str(tmp_path / "index")}
    done = subprocess.run([sys.executable, "-m", "assistant", "ingest", str(corpus), "--chroma-url", url],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"the Chroma server at {url} did not answer" in done.stderr, done.stderr[-2000:]


def test_transient_chroma_server_failures_are_retried(tmp_path, embedder, chroma_server):
    proxy = FlakyProxy(int(chroma_server.rsplit(":", 1)[1]))
    try:
        settings = Settings.from_env(index_dir=tmp_path / "index", chroma_url=proxy.url, backend="none")
        bot = Assistant(settings, embedder=embedder)
        bot.index.store.backoff = 0.05
        assert len(bot.ingest([build_corpus(tmp_path / "corpus")]).added) == 6
        proxy.fail_next(2)  # the server drops its connections and the next two new ones
        answer = bot.ask("When was Hollowmere Lighthouse first lit?")
        assert "1871" in answer.answer
        assert proxy.dropped == 2
        proxy.fail_next(2)
        assert bot.remove("lighthouse.txt") == ["lighthouse.txt"]
        assert bot.index.store.ids() == bot.index.catalog.chunk_ids()
    finally:
        proxy.close()
