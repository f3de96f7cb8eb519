"""The assistant's parts as llama-index components, with the real bundled models and a real
Chroma in tmp_path: its retriever under stock llama-index engines, its own engines, any
llama-index LLM or embedding plugged in, llama-index ``Document``s ingested.

Nothing here may reach for OpenAI: every llama-index call is given ``llm=`` (and the global
``Settings`` is checked untouched).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from llama_index.core import Document
from llama_index.core import Settings as LlamaSettings
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.chat_engine import CondensePlusContextChatEngine
from llama_index.core.llms import CompletionResponse, CompletionResponseGen, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, TextNode

from assistant import Assistant, Settings
from assistant.errors import LLMError
from index.errors import SettingsMismatch
from tests.support.corpus import LIGHTHOUSE, build_corpus

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("When was Hollowmere Lighthouse first lit?", "lighthouse.txt", "1871"),
    ("What festival takes place in Bunol?", "spain.pdf", "Tomatina"),
    ("Which platform did the Ministry of State Security join?", "seed.txt", "WeChat"),
    ("What currency does Switzerland use?", "switzerland.docx", "franc"),
]
NODE_METADATA = {"source", "title", "page", "doc_id", "chunk_id"}


@pytest.fixture(scope="module")
def bot(tmp_path_factory, embedder, bundled_llm):
    root = tmp_path_factory.mktemp("llama")
    assistant = Assistant(Settings.from_env(index_dir=root / "index"), embedder=embedder, llm=bundled_llm)
    assert not assistant.ingest([build_corpus(root / "corpus")]).failed
    return assistant


@pytest.fixture(autouse=True)
def _global_settings_untouched():
    """No llama-index default (OpenAI) model is ever resolved."""
    yield
    assert LlamaSettings._llm is None and LlamaSettings._embed_model is None


def ids(nodes) -> list[str]:
    return [n.node.node_id for n in nodes]


def chunk_ids(answer) -> list[str]:
    return [c.chunk_id for c in answer.citations]


# ----------------------------------------------------------------------------- the retriever
def test_the_retriever_gives_the_passages_ask_shows(bot):
    retriever = bot.as_retriever()
    for question, source, _ in QUESTIONS:
        nodes = retriever.retrieve(question)
        answer = bot.ask(question)
        assert ids(nodes) == chunk_ids(answer), question
        for n, c in zip(nodes, answer.citations):
            assert isinstance(n, NodeWithScore) and isinstance(n.node, TextNode)
            assert (n.node.start_char_idx, n.node.end_char_idx) == (c.start, c.end)
            assert n.node.text == c.text and n.score == pytest.approx(c.score)
            assert set(n.node.metadata) == NODE_METADATA
            assert n.node.metadata["source"] == c.source and n.node.ref_doc_id == c.doc_id
        assert nodes[0].node.metadata["source"] == source or source in {n.node.metadata["source"] for n in nodes}


def test_the_retriever_takes_k_and_documents(bot):
    nodes = bot.as_retriever(k=2, docs=["spain.pdf"]).retrieve("What festival takes place in Bunol?")
    assert 1 <= len(nodes) <= 2
    assert {n.node.metadata["source"] for n in nodes} == {"spain.pdf"}
    assert {n.node.metadata["page"] for n in nodes} <= {1, 2}


def test_a_stock_query_engine_over_the_retriever(bot, bundled_llm):
    retriever = bot.as_retriever()
    engine = RetrieverQueryEngine.from_args(retriever, llm=bundled_llm)
    question = "When was Hollowmere Lighthouse first lit?"
    response = engine.query(question)
    assert ids(response.source_nodes) == ids(retriever.retrieve(question))
    assert "1871" in str(response), str(response)


def test_a_stock_chat_engine_over_the_retriever(bot, bundled_llm):
    engine = CondensePlusContextChatEngine.from_defaults(bot.as_retriever(), llm=bundled_llm)
    first = engine.chat("When was Hollowmere Lighthouse first lit?")
    assert "lighthouse.txt" in {n.node.metadata["source"] for n in first.source_nodes}
    assert str(first.response).strip()
    second = engine.stream_chat("Who installed the paraffin burner?")
    pieces = list(second.response_gen)
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert second.source_nodes
    assert len(engine.chat_history) == 4


# ----------------------------------------------------------------------------- our engines
def test_the_query_engine_answers_as_ask_does(bot):
    for mode in ("extractive", None):
        engine = bot.as_query_engine(mode=mode)
        for question, source, fact in QUESTIONS[:2]:
            response = engine.query(question)
            answer = bot.ask(question, mode=mode)
            assert response.response == answer.answer and fact in response.response
            assert ids(response.source_nodes) == chunk_ids(answer)
            assert response.metadata == answer.to_dict()
            cited = [n for n in response.source_nodes if n.node.metadata["cited"]]
            assert source in {n.node.metadata["source"] for n in cited}
    abstained = bot.as_query_engine().query("How do I bake sourdough bread?")
    assert abstained.metadata["abstained"] and abstained.response == bot.ask("How do I bake sourdough bread?").answer


def test_the_query_engine_streams_then_holds_the_checked_answer(bot):
    question = "Which platform did the Ministry of State Security join?"
    response = bot.as_query_engine(streaming=True, mode="generate").query(question)
    pieces = list(response.response_gen)
    assert len(pieces) > 3, "the model's text arrives in pieces"
    answer = response.answer
    assert answer.mode in ("generate", "extractive") and "WeChat" in answer.answer
    assert str(response) == answer.answer
    assert ids(response.source_nodes) == chunk_ids(answer)
    assert response.get_response().response == answer.answer


def test_the_chat_engine_streams_and_keeps_the_conversation(bot):
    engine = bot.as_chat_engine()
    first = engine.chat("When was Hollowmere Lighthouse first lit?")
    assert "1871" in first.response
    assert {n.node.metadata["source"] for n in first.source_nodes} == {"lighthouse.txt"} or \
        "lighthouse.txt" in {n.node.metadata["source"] for n in first.source_nodes if n.node.metadata["cited"]}
    follow = engine.stream_chat("When was it automated?")
    pieces = list(follow.response_gen)
    assert pieces and follow.answer is not None
    assert follow.response == follow.answer.answer and "1987" in follow.response
    assert follow.answer.rewritten_question, "the follow-up was read in the conversation"
    assert ids(follow.source_nodes) == chunk_ids(follow.answer)
    assert [m.content for m in engine.chat_history][::2] == ["When was Hollowmere Lighthouse first lit?",
                                                           "When was it automated?"]
    engine.reset()
    assert engine.chat_history == []


# ----------------------------------------------------------------------------- models plugged in
class CitingLLM(CustomLLM):
    """A llama-index LLM that answers with the numbered passage holding ``fact``, cited
    (plumbing: it shows what reached the model and that its answer is used)."""

    fact: str
    prompts: list = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=4096, num_output=64, model_name="citing")

    def _answer(self, prompt: str) -> str:
        self.prompts.append(prompt)
        sources = prompt.split("Sources:", 1)[-1].split("\nQuestion:", 1)[0]
        for n, passage in re.findall(r"^\[(\d+)\] (.*?)(?=^\[\d+\] |\Z)", sources, flags=re.M | re.S):
            for sentence in re.split(r"(?<=[.!?])\s+", passage):
                if self.fact in sentence:
                    return f"{sentence} [{n}]"
        return "I don't know."

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._answer(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self._answer(prompt)
        words = text.split(" ")
        for i in range(len(words)):
            yield CompletionResponse(text=" ".join(words[:i + 1]), delta=(" " if i else "") + words[i])


def test_a_custom_llama_index_llm_answers(bot, tmp_path, embedder):
    llm = CitingLLM(fact="1871", prompts=[])
    custom = Assistant(bot.settings, embedder=embedder, llm=llm)
    answer = custom.ask("When was Hollowmere Lighthouse first lit?", mode="generate")
    assert llm.prompts and "Hollowmere" in llm.prompts[0], "the passages reached the model"
    assert answer.mode == "generate" and not answer.abstained
    assert "1871" in answer.answer and answer.backend == "citingllm:citing"
    assert "lighthouse.txt" in {c.source for c in answer.cited}


class UnreachableLLM(CitingLLM):
    """An LLM whose metadata asks its server, as Ollama's does for its window, and the server is down."""

    model: str = "llama3.2"
    base_url: str = "http://127.0.0.1:9"

    @property
    def metadata(self) -> LLMMetadata:
        raise ConnectionError("Failed to connect to the server")


def test_an_llm_whose_server_is_down_is_named(bot, embedder):
    custom = Assistant(bot.settings, embedder=embedder, llm=UnreachableLLM(fact="1871", prompts=[]))
    assert custom.backend == "unreachablellm:llama3.2@http://127.0.0.1:9", "named without asking the server"
    with pytest.raises(LLMError, match=r"cannot reach the LLM server at http://127.0.0.1:9: .* is it running"):
        custom.ask("When was Hollowmere Lighthouse first lit?", mode="generate")


class WrappedMiniLM(BaseEmbedding):
    """A llama-index embedding as a user might bring one (here the real all-MiniLM-L6-v2,
    reached through llama-index's interface only)."""

    _inner: Any = PrivateAttr()

    def __init__(self, inner, **kwargs: Any):
        super().__init__(model_name="all-MiniLM-L6-v2", **kwargs)
        self._inner = inner

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._inner.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._inner.embed([text])[0]


def test_a_llama_index_embedding_indexes_and_answers(tmp_path, corpus, embedder):
    settings = Settings.from_env(index_dir=tmp_path / "index", backend="none")
    bot = Assistant(settings, embed_model=WrappedMiniLM(embedder))
    assert bot.embedder.name == "WrappedMiniLM:all-MiniLM-L6-v2" and bot.embedder.dim == 384
    assert not bot.ingest([corpus]).failed
    answer = bot.ask("When was Hollowmere Lighthouse first lit?")
    assert "1871" in answer.answer and "lighthouse.txt" in {c.source for c in answer.cited}
    assert bot.embed_model.get_query_embedding("x") == pytest.approx(embedder.embed(["x"])[0], abs=1e-6)
    with pytest.raises(SettingsMismatch, match="--rebuild"):
        Assistant(settings, embedder=embedder).ask("When was Hollowmere Lighthouse first lit?")


class DownEmbedding(BaseEmbedding):
    """An embedding whose server is down (Ollama's client raises ConnectionError)."""

    def _get_query_embedding(self, query: str) -> list[float]:
        raise ConnectionError("Failed to connect to the server")

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        raise ConnectionError("Failed to connect to the server")


def test_an_unreachable_embedding_stops_the_ingest_naming_it(tmp_path, corpus):
    from index.errors import EmbedderError
    from index.llamaindex import EmbeddingAdapter

    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="none"),
                    embedder=EmbeddingAdapter(DownEmbedding(model_name="nomic"), dim=8))
    with pytest.raises(EmbedderError, match="cannot reach the embedding model DownEmbedding:nomic"):
        bot.ingest([corpus])


def test_the_openai_like_llm_against_a_real_server(tmp_path, corpus, embedder, llm_server):
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model="smollm2", api_base=llm_server, api_key="none", is_chat_model=True,
                     context_window=2048, max_tokens=160, temperature=0.0)
    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index"), embedder=embedder, llm=llm)
    assert not bot.ingest([corpus]).failed
    streamed = list(bot.stream("Which platform did the Ministry of State Security join?", mode="generate"))
    answer = streamed[-1]
    assert len(streamed) > 3, "the server's answer streams in pieces"
    assert answer.backend == f"openai:smollm2@{llm_server}"
    assert "WeChat" in answer.answer and "seed.txt" in {c.source for c in answer.cited}


# ----------------------------------------------------------------------------- ingest
def test_llama_index_documents_are_ingested_by_id_and_content(tmp_path, embedder):
    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="none"), embedder=embedder)
    note = Document(id_="notes/keeper", text=LIGHTHOUSE, metadata={"title": "Keeper's log"})
    other = Document(id_="notes/tea", text="Darjeeling tea is grown in West Bengal at high altitude.")
    report = bot.ingest([note, other])
    assert sorted(report.added) == ["notes/keeper", "notes/tea"] and not report.failed
    assert {d.source: d.title for d in bot.documents()} == {"notes/keeper": "Keeper's log",
                                                            "notes/tea": "notes/tea"}
    answer = bot.ask("When was Hollowmere Lighthouse first lit?")
    assert "1871" in answer.answer and answer.cited[0].source == "notes/keeper"
    assert answer.cited[0].text == LIGHTHOUSE[answer.cited[0].start:answer.cited[0].end]

    again = bot.ingest([Document(id_="notes/keeper", text=LIGHTHOUSE, metadata={"title": "Keeper's log"})])
    assert again.unchanged == ["notes/keeper"] and not again.added and not again.updated

    changed = Document(id_="notes/keeper", text=LIGHTHOUSE.replace("1871", "1872"),
                       metadata={"title": "Keeper's log"})
    assert bot.ingest([changed]).updated == ["notes/keeper"]
    assert "1872" in bot.ask("When was Hollowmere Lighthouse first lit?").answer
    assert len(bot.documents()) == 2, "replaced, not added"

    assert bot.remove("notes/keeper") == ["notes/keeper"]
    assert [d.source for d in bot.documents()] == ["notes/tea"]
    assert bot.index.store.ids() == bot.index.catalog.chunk_ids()
    assert bot.ask("When was Hollowmere Lighthouse first lit?").abstained


def test_the_node_parser_keeps_exact_offsets(bot):
    text = "\n\n".join([LIGHTHOUSE] * 6)
    nodes = bot.node_parser.get_nodes_from_documents([Document(id_="log", text=text)])
    assert len(nodes) > 1
    for node in nodes:
        assert node.text == text[node.start_char_idx:node.end_char_idx]
        assert node.ref_doc_id == "log" and bot.embedder.fits(node.text)
    streamed = list(bot.node_parser.stream_nodes(iter(text[i:i + 500] for i in range(0, len(text), 500))))
    assert [(n.start_char_idx, n.end_char_idx) for n in streamed] == \
        [(n.start_char_idx, n.end_char_idx) for n in nodes]


def test_the_stock_engines_offline():
    """The stock llama-index engines above, again in a namespace with nothing but loopback:
    nothing in llama-index reaches out (for a model, a tokenizer or NLTK data)."""
    import shlex
    import subprocess
    import sys

    from tests.support import ROOT
    from tests.support.offline import no_network_command

    script = f"""
set -e
ip link set lo up
test -z "$(ip route show)"
{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider tests/assistant/test_llama_index.py -k "stock_query or stock_chat"
"""
    result = subprocess.run([*no_network_command(), "sh", "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"2 passed, \d+ deselected in [\d.]+s( \([\d:]+\))?", summary), summary
