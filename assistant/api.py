"""``ask()`` and ``Assistant``: what ``from assistant import ...`` gives you.

    >>> from assistant import Assistant, Settings
    >>> bot = Assistant(Settings.from_env(index_dir="/tmp/idx"))
    >>> bot.ingest(["seeds"])
    >>> bot.ask("Which platform did the ministry join?").answer
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Iterator

from assistant.answer import (
    ABSTAIN_TEXT,
    Answer,
    PromptBudget,
    build_messages,
    cited_numbers,
    evidence,
    extractive_text,
    finalize,
    fit_passages,
    make_citations,
    question_terms,
)
from assistant.config import MODES, Settings, check_k
from assistant.models import LLM, make_embedder, make_llm
from assistant.retrieval import Retriever, terms
from index.catalog import Document
from index.sync import ChunkSettings, Index, SyncReport, ingest, remove

EMPTY_INDEX_TEXT = "No documents are indexed yet; add some first (assistant ingest PATH)."
MAX_QUESTION_CHARS = 2000

REWRITE_PROMPT = (
    "Rewrite the last question of this conversation as one standalone question that names what "
    "it refers to. Reply with the question only.\n\n{conversation}\n\nLast question: {question}\n"
    "Standalone question:"
)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her|this|that|these|those|there|then)\b",
                      re.IGNORECASE)


class Assistant:
    """Answers questions over one index, with cited passages.

    Args:
        settings: where the index is and how to answer (see ``Settings``).
        embedder: the embedding model (default: the bundled all-MiniLM-L6-v2).
        llm: the LLM (default: from ``settings.backend``; loaded on first use).
    """

    def __init__(self, settings: Settings, embedder=None, llm: LLM | None = None):
        self.settings = settings
        self.embedder = embedder or make_embedder(settings)
        self.index = Index(
            settings.index_dir,
            self.embedder,
            chroma_url=settings.chroma_url,
            chunking=ChunkSettings(settings.chunk_tokens, settings.overlap_tokens),
            max_file_bytes=int(settings.max_file_mb * 1_000_000),
        )
        self.retriever = Retriever(self.index)
        self._llm = llm

    @property
    def llm(self) -> LLM | None:
        if self._llm is None and self.settings.backend != "none":
            self._llm = make_llm(self.settings)
        return self._llm

    def with_backend(self, backend: str) -> "Assistant":
        """An assistant answering with another backend, sharing this one's index and embedder."""
        other = copy.copy(self)
        other.settings = self.settings.with_(backend=backend)
        other._llm = None
        return other

    @property
    def backend(self) -> str:
        return self.llm.name if self.llm is not None else "none"

    # documents ------------------------------------------------------------
    def ingest(self, paths: list[str | Path], progress=None, rebuild: bool = False,
               wait: float = 0) -> SyncReport:
        """Index files and folders (see ``index.sync.ingest``)."""
        return ingest(self.index, [Path(p) for p in paths], progress=progress, rebuild=rebuild,
                      wait=wait)

    def remove(self, target: str, wait: float = 0, folder: bool = False) -> list[str]:
        """Remove a document by its source as listed, or its path; every document under a
        folder only with ``folder=True``. Returns the sources removed; raises ValueError
        (``index.sync.RemovalRefused``) for an ambiguous name, an unconfirmed folder, or ``/``."""
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

        The streamed text is the model's raw output; only the final ``Answer`` has
        its citations checked (and may differ from the streamed text).
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
        if self.llm is None:
            mode = "extractive"
        doc_ids = self.doc_ids(docs)
        rewritten = self.rewrite(question, history) if history else None
        query = (rewritten or question)[:MAX_QUESTION_CHARS]

        docs_by_id = {d.doc_id: d for d in self.documents()}
        sources = {i: (d.source, d.title) for i, d in docs_by_id.items()}
        titles = {i: d.title or d.source for i, d in docs_by_id.items()}

        def final(text, abstained, hits=(), ev=None, used_mode=None, asked_llm=mode == "generate"):
            used_mode = used_mode or ("generate" if mode == "generate" else "extractive")
            backend = self.backend if asked_llm else "extractive"
            cites = make_citations(list(hits), text, cited_numbers(text), ev, sources)
            return Answer(question, text, abstained, used_mode, backend, cites, rewritten)

        if not docs_by_id:
            yield final(EMPTY_INDEX_TEXT, True)
            return
        hits = self.retriever.search(query, k, doc_ids)
        ev = evidence(query, hits, self.embedder, titles)
        if not hits or not ev.answerable or (mode == "extractive" and not ev.strong):
            yield final(ABSTAIN_TEXT, True, hits, ev)
            return
        if mode == "extractive" or (mode == "auto" and ev.strong):
            # a passage states the answer plainly: quote it rather than have a small model paraphrase
            text = extractive_text(ev)
            yield text
            yield final(text, False, hits, ev, "extractive", asked_llm=False)
            return
        # only what fits the model's window is shown, and only what is shown can be cited
        budget = PromptBudget.for_llm(self.llm, self.settings.max_answer_tokens)
        shown = fit_passages(query, hits, budget)
        if shown != hits:
            hits, ev = shown, evidence(query, shown, self.embedder, titles)
        raw = ""
        for piece in self.llm.stream(build_messages(query, hits), self.settings.max_answer_tokens):
            raw += piece
            yield piece
        text, abstained, fell_back = finalize(query, raw, hits, ev, titles)
        yield final(text, abstained, hits, ev, "extractive" if fell_back else "generate", asked_llm=True)

    def rewrite(self, question: str, history: list[dict]) -> str | None:
        """A standalone version of a follow-up question, or None when it stands alone."""
        previous = [m["content"] for m in history if m.get("role") == "user" and m.get("content")]
        if not previous or not (_PRONOUN.search(question) or len(question_terms(question)) <= 1):
            return None
        if self.llm is not None:
            turns = "\n".join(f"{m['role']}: {' '.join(str(m['content']).split())[:400]}"
                              for m in history[-4:])
            prompt = REWRITE_PROMPT.format(conversation=turns, question=question)
            out = "".join(self.llm.stream([{"role": "user", "content": prompt}], 48))
            candidate = out.strip().split("\n")[0].strip().strip('"')
            if _good_rewrite(question, candidate, previous[-1]):
                return candidate
        return f"{question.rstrip()} ({previous[-1].strip()})"


def _good_rewrite(question: str, candidate: str, previous: str) -> bool:
    """A rewrite keeps the question's words, adds some from the conversation, and stays short."""
    if not candidate or len(candidate) > 3 * len(question) + 80 or not candidate.endswith("?"):
        return False
    own, new = set(terms(question)), set(terms(candidate))
    return own <= new and bool((new - own) & set(terms(previous)))


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
