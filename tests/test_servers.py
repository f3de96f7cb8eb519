"""The opt-in server paths against real server processes on local ports:
an OpenAI-compatible LLM server (llama-cpp-python's own, with the bundled model)
and a Chroma server (``chroma run``)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from assistant import Assistant, Settings
from assistant.models import LLMError, OpenAICompatLLM, bundled_model_path
from tests.conftest import build_corpus, free_port, start_process, stop_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    proc = start_process([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
                   "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                   "--n_ctx", "2048"], f"http://127.0.0.1:{port}/v1/models", log)
    yield f"http://127.0.0.1:{port}/v1"
    stop_process(proc)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    chroma = shutil.which("chroma") or os.path.join(os.path.dirname(sys.executable), "chroma")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma")
    log = folder / "server.log"
    proc = start_process([chroma, "run", "--path", str(folder / "data"), "--host", "127.0.0.1",
                   "--port", str(port)], f"http://127.0.0.1:{port}/api/v2/heartbeat", log)
    yield f"http://127.0.0.1:{port}"
    stop_process(proc)


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
    llm = OpenAICompatLLM(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(LLMError, match="cannot reach the LLM server .* is it running"):
        list(llm.stream([{"role": "user", "content": "hi"}], 5))


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
