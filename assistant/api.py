"""``ask()`` and ``Assistant``: what ``from assistant import ...`` gives you, and the one door
the CLI, the chat and the llama-index engines use.

    >>> from assistant import Assistant, Settings
    >>> bot = Assistant(Settings.from_env(index_dir="/tmp/idx"))
    >>> bot.ingest(["seeds"])
    >>> bot.ask("Which platform did the ministry join?").answer
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Iterator

from assistant.config import MODES, Settings, check_k
from assistant.pipeline import followup, spelling
from assistant.pipeline.answering import Answering, Writer
from assistant.pipeline.reader import shared_reader
from assistant.pipeline.retrieval import Retriever
from assistant.types import Answer
from index.catalog import Document
from index.embedding.embedder import make_embedder
from index.index import ChunkSettings, Index
from index.ingest import SyncReport, ingest, is_document_object
from index.readers import SUPPORTED_SUFFIXES
from index.removal import remove, remove_documents


class Assistant:
    """Answers questions over one index, with cited passages.

    Args:
        settings: where the index is and how to answer (see ``Settings``).
        embedder: the embedding model (default: the bundled all-MiniLM-L6-v2), with ``name``,
            ``dim``, ``max_tokens``, ``count_tokens``, ``fits`` and ``embed`` (``index.embedding``).
        llm: the LLM: any llama-index ``LLM`` (default: from ``settings.backend``, loaded when
            an answer first needs it).
        embed_model: instead of ``embedder``, a llama-index embedding (``BaseEmbedding``), used
            through ``index.llamaindex.EmbeddingAdapter`` (wrap it yourself to declare its token limit).

    Its parts as llama-index components: ``as_retriever``, ``as_query_engine``,
    ``as_chat_engine``, ``embed_model`` and ``node_parser`` (docs/llama-index.md).
    The answering steps are ``answering`` (``assistant.pipeline.answering``).
    """

    supported_suffixes = SUPPORTED_SUFFIXES  # the file types ``ingest`` reads

    def __init__(self, settings: Settings, embedder=None, llm=None, embed_model=None):
        if embedder is not None and embed_model is not None:
            raise ValueError("pass embedder or embed_model, not both")
        self.settings = settings
        if embed_model is not None:
            from index.llamaindex import as_embedder

            embedder = as_embedder(embed_model)
        self.embedder = embedder or embedder_for(settings)
        self.index = Index(
            settings.index_dir,
            self.embedder,
            chroma_url=settings.chroma_url,
            chunking=ChunkSettings(settings.chunk_tokens, settings.overlap_tokens),
            max_file_bytes=int(settings.max_file_mb * 1_000_000),
        )
        self.retriever = Retriever(self.index)
        self.answering = Answering(self.index, self.embedder, self.retriever, Writer(settings, llm),
                                   shared_reader(settings.threads) if settings.reader == "on" else None)

    @property
    def llm(self):
        """The LLM (a llama-index ``LLM``), loaded on first use; None with backend ``none``."""
        return self.answering.writer.llm

    @property
    def has_llm(self) -> bool:
        """True when an LLM can be asked (without loading it)."""
        return self.answering.writer.has_llm

    def with_backend(self, backend: str) -> "Assistant":
        """An assistant answering with another backend, sharing this one's index and embedder."""
        other = copy.copy(self)
        other.settings = self.settings.with_(backend=backend)
        other.answering = Answering(self.index, self.embedder, self.retriever, Writer(other.settings),
                                    self.answering.reader)
        return other

    @property
    def backend(self) -> str:
        return self.answering.writer.backend

    def warm_up(self) -> None:
        """Load the models and run each once, so the first answer is quick (the chat calls it
        while its page starts)."""
        self.embedder.embed(["warm up"])
        self.retriever.warm_up()
        spelling.english_words()
        if self.answering.reader is not None:
            self.answering.reader.read("warm up?", ["Warm up."], [(0, 0, 8)])
        if self.llm is not None:
            try:
                list(self.answering.writer.stream([{"role": "user", "content": "Hi"}], max_tokens=1))
            except Exception:  # an unreachable server is reported on the first question instead
                pass

    def ingest(self, paths: list, progress=None, rebuild: bool = False,
               wait: float = 0) -> SyncReport:
        """Index files and folders, and llama-index ``Document``s (see ``index.ingest.ingest``).

        ``paths`` may mix paths and documents (anything with ``id_``, ``text`` and
        ``metadata``, e.g. from a LlamaHub reader). A document is known by its ``id_``, listed
        with it as its source, and replaced only when its text or title changed.
        """
        items = [p if is_document_object(p) else Path(p) for p in paths]
        return ingest(self.index, items, progress=progress, rebuild=rebuild, wait=wait)

    def remove(self, target: str, wait: float = 0, folder: bool = False) -> list[str]:
        """Remove a document by its source as listed (a llama-index ``Document``'s ``id_``), or its
        path; every document under a folder only with ``folder=True``. Returns the sources removed;
        raises ValueError (``index.errors.RemovalRefused``) for an ambiguous name, an unconfirmed
        folder, or ``/``."""
        return remove(self.index, target, wait=wait, folder=folder)

    def documents(self) -> list[Document]:
        return self.index.catalog.documents()

    def doc_ids(self, docs: list[str] | None) -> list[str] | None:
        """Document ids for sources or paths; raises ValueError naming any unknown one."""
        if not docs:
            return None
        known = self.documents()
        out = []
        for d in docs:
            absolute = str(Path(d).absolute())
            match = [x.doc_id for x in known if x.source == d or x.path == absolute or x.doc_id == d]
            if not match:
                raise ValueError(f"no indexed document {d!r}; see `assistant list` for what is indexed")
            out.extend(match)
        return out

    def remove_documents(self, target: str, wait: float = 0, folder: bool = False) -> list[Document]:
        """As ``remove``, returning the documents removed."""
        return remove_documents(self.index, target, wait=wait, folder=folder)

    # answers --------------------------------------------------------------
    def ask(self, question: str, k: int | None = None, docs: list[str] | None = None,
            mode: str | None = None) -> Answer:
        """Answer one question; returns the checked ``Answer``."""
        return _last(self.stream(question, history=None, k=k, docs=docs, mode=mode))

    def chat(self, question: str, history: list[dict] | None, **kwargs) -> Answer:
        """Answer a question in a conversation (``history``: earlier role/content messages)."""
        return _last(self.stream(question, history=history, **kwargs))

    def stream(self, question: str, history: list[dict] | None = None, k: int | None = None,
               docs: list[str] | None = None, mode: str | None = None) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated, then the final checked ``Answer``.

        The streamed text is the model's raw output (or the quote); only the final
        ``Answer`` has its claims and citations checked (and may differ from it).
        """
        question = question or ""
        if not question.strip():
            raise ValueError("the question is empty")
        # never answer from vectors another embedder made (raises SettingsMismatch, saying how to rebuild)
        self.index.check_settings()
        k = check_k(self.settings.k if k is None else k)
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not self.has_llm:
            mode = "extractive"
        doc_ids = self.doc_ids(docs)
        history = followup.check_history(history)
        yield from self.answering.stream(question, history, k, doc_ids, mode)

    def search(self, query: str, k: int, docs: list[str] | None = None) -> list:
        """The ``k`` passages hybrid retrieval ranks first for ``query`` (``Hit``s: chunk, score),
        before any reading: what ``eval`` measures as retrieval alone."""
        return self.retriever.search(query, k, self.doc_ids(docs))

    def summarize(self, doc: str, mode: str | None = None) -> Answer:
        """A summary of one indexed document (its source as listed, or its path), each sentence cited."""
        return self.ask("Summarize the document.", docs=[doc], mode=mode)

    def as_retriever(self, k: int | None = None, docs: list[str] | None = None):
        """A llama-index ``BaseRetriever`` giving the passages ``ask`` shows, in its order
        (``assistant.llamaindex.AssistantRetriever``)."""
        from assistant.llamaindex import AssistantRetriever

        return AssistantRetriever(self, k=k, docs=docs)

    def as_query_engine(self, streaming: bool = False, mode: str | None = None, k: int | None = None,
                        docs: list[str] | None = None):
        """A llama-index query engine whose response is the checked answer and whose source nodes
        are its citations (``assistant.llamaindex.AnswerQueryEngine``)."""
        from assistant.llamaindex import AnswerQueryEngine

        return AnswerQueryEngine(assistant=self, streaming=streaming, mode=mode, k=k, docs=docs)

    def as_chat_engine(self, mode: str | None = None, k: int | None = None, docs: list[str] | None = None,
                       chat_history=None):
        """A llama-index chat engine answering follow-ups as ``chat`` does, keeping the
        conversation (``assistant.llamaindex.AnswerChatEngine``); ``stream_chat`` streams."""
        from assistant.llamaindex import AnswerChatEngine

        return AnswerChatEngine(self, mode=mode, k=k, docs=docs, chat_history=chat_history)

    @property
    def embed_model(self):
        """The embedder as a llama-index ``BaseEmbedding`` (e.g. for a ``VectorStoreIndex``)."""
        from index.llamaindex import as_embed_model

        return as_embed_model(self.embedder)

    @property
    def node_parser(self):
        """The chunker as a llama-index ``NodeParser``, with this index's sizes and the
        embedder's fit check (``index.llamaindex.ChunkParser``)."""
        from index.llamaindex import ChunkParser

        chunking = self.index.chunking
        return ChunkParser(max_tokens=chunking.max_tokens, overlap_tokens=chunking.overlap_tokens,
                           fits=self.embedder.fits)


def embedder_for(settings: Settings):
    """The bundled all-MiniLM-L6-v2 embedder on the runtime the settings ask for (loaded on first use)."""
    return make_embedder(settings.embed_runtime, threads=settings.threads, workers=settings.embed_workers)


def _last(stream: Iterator[str | Answer]) -> Answer:
    result = None
    for item in stream:
        result = item
    assert isinstance(result, Answer)
    return result


@functools.lru_cache(maxsize=4)
def _assistant_for(settings: Settings) -> Assistant:
    return Assistant(settings)


def ask(question: str, k: int | None = None, docs: list[str] | None = None,
        mode: str | None = None, **settings) -> Answer:
    """Answer one question over the default index (or ``index_dir=...``).

    Args:
        question: the question.
        k: passages to give the answerer, 1 to 10 (default 4).
        docs: restrict to these documents (sources as listed, or paths).
        mode: ``auto`` (quote the best sentences when the evidence is strong, else the
            LLM), ``generate`` (the LLM) or ``extractive`` (best sentences, no LLM).
        **settings: any ``Settings`` field, e.g. ``index_dir``, ``backend``, ``llm_url``.

    Returns:
        The checked ``Answer``; ``answer.to_dict()`` is the JSON format.
    """
    assistant = _assistant_for(Settings.from_env(**settings))
    return assistant.ask(question, k=k, docs=docs, mode=mode)
