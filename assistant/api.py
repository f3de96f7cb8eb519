"""``ask()`` and ``Assistant``: what ``from assistant import ...`` gives you.

    >>> from assistant import Assistant, Settings
    >>> bot = Assistant(Settings.from_env(index_dir="/tmp/idx"))
    >>> bot.ingest(["seeds"])
    >>> bot.ask("Which platform did the ministry join?").answer
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import threading
from pathlib import Path
from typing import Iterator

from assistant import followup, overview, spelling
from assistant.answer import ABSTAIN_TEXT, Answer, Marks, check_claims, finalize, make_citations, quote
from assistant.config import MODES, Settings, check_k
from assistant.evidence import (ANSWER_THRESHOLD, FOLLOWUP_ANSWER_THRESHOLD, Evidence, Passage, evidence,
                                idf_weights)
from assistant.models import llm_name, make_embedder, make_llm, stream_text
from assistant.prompt import PromptBudget, build_messages, fit_passages
from assistant.retrieval import Hit, Retriever
from index.catalog import Document
from index.sync import ChunkSettings, Index, SyncReport, ingest, is_text_document, remove
from index.terms import terms

EMPTY_INDEX_TEXT = "No documents are indexed yet; add some first (assistant ingest PATH)."
MAX_QUESTION_CHARS = 2000
# Passages retrieved per question; the evidence is read in all of them, and the ``k`` shown are
# the best ranked, with the one holding the best sentence swapped in when it ranked lower
# (SQuAD dev: the answer's passage among the shown 0.908 → 0.938 when read from 8).
CANDIDATE_PASSAGES = 8
# A follow-up is read in CANDIDATE_PASSAGES passages of the document the conversation is about
# (the best match for its last CONVERSATION_WORDS words). When that document does not answer it
# at the follow-up threshold, it is read again in all documents, this many of the conversation's
# document's passages first, and another document answers it only when that one answers it this
# plainly; otherwise the conversation's document answers at any confidence above zero. CoQA dev:
# follow-ups right 0.313 → 0.375, answers citing another story 122 → 68 of 670; a change of subject
# (``assistant eval --subject-changes``) is answered right 20 of 53 times, 21 asked alone (docs/evaluation.md).
CONVERSATION_PASSAGES = 4
CHANGED_SUBJECT_CONFIDENCE = 0.5
CONVERSATION_DOCUMENT_THRESHOLD = 0.001
CONVERSATION_WORDS = 120
SUMMARY_PROMPT = ("Summarize the numbered sources in three to five sentences. After each sentence, cite "
                  "its source number in square brackets, like [1]. Use only what the sources say.")
WHICH_DOCUMENT = ("Several documents are indexed; say which one (for example \"Summarize {example}\", "
                  "--doc in the terminal, or \"Only these documents\" in the chat's settings).")

# One LLM is loaded at a time, by any assistant of this process: two sessions' first questions
# (or the chat's warm-up and a first question, or two copies made for one backend) would
# otherwise each load the model.
_LLM_LOADING = threading.Lock()


class Assistant:
    """Answers questions over one index, with cited passages.

    Args:
        settings: where the index is and how to answer (see ``Settings``).
        embedder: the embedding model (default: the bundled all-MiniLM-L6-v2), with ``name``,
            ``dim``, ``max_tokens``, ``count_tokens``, ``fits`` and ``embed`` (``index.embedder``).
        llm: the LLM: any llama-index ``LLM`` (default: from ``settings.backend``, loaded when
            an answer first needs it).
        embed_model: instead of ``embedder``, a llama-index embedding (``BaseEmbedding``), used
            through ``index.adapters.EmbeddingAdapter`` (wrap it yourself to declare its token limit).

    Its parts as llama-index components: ``as_retriever``, ``as_query_engine``,
    ``as_chat_engine``, ``embed_model`` and ``node_parser`` (docs/llama-index.md).
    """

    def __init__(self, settings: Settings, embedder=None, llm=None, embed_model=None):
        if embedder is not None and embed_model is not None:
            raise ValueError("pass embedder or embed_model, not both")
        self.settings = settings
        if embed_model is not None:
            from index.adapters import as_embedder

            embedder = as_embedder(embed_model)
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
        self._prompt_budget: PromptBudget | None = None

    @property
    def llm(self):
        """The LLM (a llama-index ``LLM``), loaded on first use; None with backend ``none``."""
        if self._llm is None and self.settings.backend != "none":
            with _LLM_LOADING:
                if self._llm is None:
                    self._llm = make_llm(self.settings)
        return self._llm

    def _budget(self) -> PromptBudget:
        """The LLM's prompt budget, read once (a server's window may cost a request to read)."""
        if self._prompt_budget is None:
            self._prompt_budget = PromptBudget.for_llm(self.llm, self.settings.max_answer_tokens)
        return self._prompt_budget

    @property
    def has_llm(self) -> bool:
        """True when an LLM can be asked (without loading it)."""
        return self._llm is not None or self.settings.backend != "none"

    def with_backend(self, backend: str) -> "Assistant":
        """An assistant answering with another backend, sharing this one's index and embedder."""
        other = copy.copy(self)
        other.settings = self.settings.with_(backend=backend)
        other._llm = None
        other._prompt_budget = None
        return other

    @property
    def backend(self) -> str:
        return llm_name(self.llm) if self.llm is not None else "none"

    # documents ------------------------------------------------------------
    def ingest(self, paths: list, progress=None, rebuild: bool = False,
               wait: float = 0) -> SyncReport:
        """Index files and folders, and llama-index ``Document``s (see ``index.sync.ingest``).

        ``paths`` may mix paths and documents (anything with ``id_``, ``text`` and
        ``metadata``, e.g. from a LlamaHub reader). A document is known by its ``id_``, listed
        with it as its source, and replaced only when its text or title changed.
        """
        items = [p if is_text_document(p) else Path(p) for p in paths]
        return ingest(self.index, items, progress=progress, rebuild=rebuild, wait=wait)

    def remove(self, target: str, wait: float = 0, folder: bool = False) -> list[str]:
        """Remove a document by its source as listed (a llama-index ``Document``'s ``id_``), or its
        path; every document under a folder only with ``folder=True``. Returns the sources removed;
        raises ValueError (``index.sync.RemovalRefused``) for an ambiguous name, an unconfirmed
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
        docs_by_id = {d.doc_id: d for d in self.documents()}
        # typos first ("minstry" → "ministry"): a follow-up's rewrite and the search see the word meant
        typed = question[:MAX_QUESTION_CHARS]
        corrected = self._corrected(typed) if docs_by_id else typed
        rewritten = followup.rewrite(corrected, history) if history else None
        if rewritten is not None:  # its antecedent may come from an earlier question with a typo
            rewritten = self._corrected(rewritten)
        elif corrected != typed:
            rewritten = corrected
        query = (rewritten or question)[:MAX_QUESTION_CHARS]
        sources = {i: (d.source, d.title) for i, d in docs_by_id.items()}

        def final(text, abstained, hits=(), marks=None, used_mode="extractive", asked_llm=False, kind="answer"):
            backend = self.backend if asked_llm else "extractive"
            cites = make_citations(list(hits), text, marks, sources)
            return Answer(question, text, abstained, used_mode, backend, cites, rewritten,
                          kind="none" if abstained and kind == "answer" else kind)

        if not docs_by_id:
            yield final(EMPTY_INDEX_TEXT, True)
            return
        about = overview.intent(query)
        if about is not None:
            yield from self._about_document(about, query, doc_ids, docs_by_id, mode, final)
            return
        hits, ev = self._select(query, k, doc_ids, history, docs_by_id)
        texts = [h.chunk.text for h in hits]
        if not hits or not ev.answerable:
            yield final(ABSTAIN_TEXT, True, hits)
            return
        if mode == "extractive" or (mode == "auto" and ev.strong) or ev.nearest_only:
            # a passage states the answer plainly: quote it rather than have a small model paraphrase;
            # or only the nearest passage of a follow-up's document: quote it, saying so (``quote``)
            text, marks = quote(ev, texts)
            yield text
            yield final(text, False, hits, marks)
            return
        # only what fits the model's window is shown, and only what is shown can be cited
        budget = self._budget()
        shown = fit_passages(query, hits, budget)
        if shown != hits:
            hits, ev = shown, self._evidence(query, shown, docs_by_id, ev.threshold)
            texts = [h.chunk.text for h in hits]
        raw = ""
        for piece in stream_text(self.llm, build_messages(query, hits), self.settings.max_answer_tokens):
            raw += piece
            yield piece
        titles = [docs_by_id[h.chunk.doc_id].title or "" for h in hits]
        text, abstained, quoted, marks = finalize(query, raw, ev, texts, titles)
        yield final(text, abstained, hits, marks, "extractive" if quoted else "generate", asked_llm=True)

    def _select(self, query: str, k: int, doc_ids: list[str] | None, history: list[dict] | None,
                docs_by_id: dict[str, Document]) -> tuple[list[Hit], Evidence]:
        """The ``k`` passages an answer is given, and their evidence: ``CANDIDATE_PASSAGES`` are
        retrieved and read (in a conversation, first those of the document it is about), and
        ``choose_passages`` picks which to show."""
        n = max(k, CANDIDATE_PASSAGES)
        topic = self._conversation_document(history, doc_ids) if history else None
        if topic is None:
            candidates = self.retriever.search(query, n, doc_ids)
            threshold = FOLLOWUP_ANSWER_THRESHOLD if history else ANSWER_THRESHOLD
            ev = self._evidence(query, candidates, docs_by_id, threshold)
        else:
            candidates, ev = self._follow_up(query, n, topic, doc_ids, docs_by_id)
        order = choose_passages(len(candidates), k, ev)
        return [candidates[i] for i in order], ev.only(order)

    def _follow_up(self, query: str, n: int, topic: str, doc_ids: list[str] | None,
                   docs_by_id: dict[str, Document]) -> tuple[list[Hit], Evidence]:
        """Passages and evidence for a question asked in a conversation about document ``topic``.

        A follow-up is answered from that document when one of its sentences clears the
        follow-up threshold. Otherwise from any document that answers it plainly
        (``CHANGED_SUBJECT_CONFIDENCE``: the subject changed). Otherwise from the conversation's
        document still, with its best sentence cited, unless its passages do not mention a name
        the question asks about or hold no sentence that could answer (then all documents decide).
        """
        inside = self.retriever.search(query, n, [topic])
        ev = self._evidence(query, inside, docs_by_id, FOLLOWUP_ANSWER_THRESHOLD)
        if ev.answerable:
            return inside, ev
        first = inside[:CONVERSATION_PASSAGES]
        ids = {h.chunk.chunk_id for h in first}
        rest = [h for h in self.retriever.search(query, n, doc_ids) if h.chunk.chunk_id not in ids]
        everywhere = (first + rest)[:n]
        ev_all = self._evidence(query, everywhere, docs_by_id, FOLLOWUP_ANSWER_THRESHOLD)
        if ev_all.answerable and ev_all.confidence >= CHANGED_SUBJECT_CONFIDENCE:
            return everywhere, ev_all
        if not ev.missing and ev.sentences and ev.confidence >= CONVERSATION_DOCUMENT_THRESHOLD:
            return inside, dataclasses.replace(ev, threshold=CONVERSATION_DOCUMENT_THRESHOLD)
        return everywhere, ev_all

    def _conversation_document(self, history: list[dict], doc_ids: list[str] | None) -> str | None:
        """The document the conversation so far is about: the best match for its last
        ``CONVERSATION_WORDS`` words, questions and answers together, however many turns they
        span (CoQA dev follow-ups: the story found 0.897 from the last six messages, 0.981 so)."""
        words = []
        for m in reversed(history):
            words = followup.plain(m.get("content") or "").split() + words
            if len(words) >= CONVERSATION_WORDS:
                break
        if not words:
            return None
        hits = self.retriever.search(" ".join(words[-CONVERSATION_WORDS:]), 1, doc_ids)
        return hits[0].chunk.doc_id if hits else None

    def summarize(self, doc: str, mode: str | None = None) -> Answer:
        """A summary of one indexed document (its source as listed, or its path), each sentence cited."""
        return self.ask("Summarize the document.", docs=[doc], mode=mode)

    # llama-index --------------------------------------------------------------
    def as_retriever(self, k: int | None = None, docs: list[str] | None = None):
        """A llama-index ``BaseRetriever`` giving the passages ``ask`` shows, in its order
        (``assistant.engines.AssistantRetriever``)."""
        from assistant.engines import AssistantRetriever

        return AssistantRetriever(self, k=k, docs=docs)

    def as_query_engine(self, streaming: bool = False, mode: str | None = None, k: int | None = None,
                        docs: list[str] | None = None):
        """A llama-index query engine whose response is the checked answer and whose source nodes
        are its citations (``assistant.engines.AnswerQueryEngine``)."""
        from assistant.engines import AnswerQueryEngine

        return AnswerQueryEngine(assistant=self, streaming=streaming, mode=mode, k=k, docs=docs)

    def as_chat_engine(self, mode: str | None = None, k: int | None = None, docs: list[str] | None = None,
                       chat_history=None):
        """A llama-index chat engine answering follow-ups as ``chat`` does, keeping the
        conversation (``assistant.engines.AnswerChatEngine``); ``stream_chat`` streams."""
        from assistant.engines import AnswerChatEngine

        return AnswerChatEngine(self, mode=mode, k=k, docs=docs, chat_history=chat_history)

    @property
    def embed_model(self):
        """The embedder as a llama-index ``BaseEmbedding`` (e.g. for a ``VectorStoreIndex``)."""
        from index.adapters import as_embed_model

        return as_embed_model(self.embedder)

    @property
    def node_parser(self):
        """The chunker as a llama-index ``NodeParser``, with this index's sizes and the
        embedder's fit check (``index.adapters.ChunkParser``)."""
        from index.adapters import ChunkParser

        chunking = self.index.chunking
        return ChunkParser(max_tokens=chunking.max_tokens, overlap_tokens=chunking.overlap_tokens,
                           fits=self.embedder.fits)

    # evidence ---------------------------------------------------------------
    def _evidence(self, query: str, hits: list[Hit], docs_by_id: dict[str, Document],
                  threshold: float = ANSWER_THRESHOLD) -> Evidence:
        """Score every sentence of ``hits`` against the question (``assistant.evidence``)."""
        return evidence(query, self.passages(hits, docs_by_id), self.idf, self.similarity(query), threshold)

    def passages(self, hits: list[Hit], docs_by_id: dict[str, Document]) -> list[Passage]:
        """What the evidence reads of each hit: its text, title and the sections it sits in."""
        out = []
        for h in hits:
            c = h.chunk
            doc = docs_by_id.get(c.doc_id)
            sections = tuple((x.start - c.start, x.end - c.start, x.kind, x.text)
                             for x in self.index.catalog.sections(c.doc_id, c.start, c.end))
            out.append(Passage(c.text, doc.title if doc else None, sections))
        return out

    def similarity(self, query: str):
        """Cosine similarity of ``query`` to each of a list of texts, with the retrieval embedder."""
        def similarity(texts: list[str]) -> list[float]:
            q = self.retriever.query_vector(query)
            return [float(sum(a * b for a, b in zip(q, v))) for v in self.embedder.embed(texts)]

        return similarity

    def _corrected(self, question: str) -> str:
        """``question`` with its typos corrected to words the passages use (``assistant.spelling``)."""
        catalog = self.index.catalog

        def spelt(word: str) -> bool:  # a passage has it, in lower case (a few passages with its term looked at)
            pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")
            return any(pattern.search(text) for t in terms(word) for text in catalog.texts_with_term(t, 20))

        return spelling.correct(question, lambda words: catalog.term_stats(words)[1], spelt,
                                overview.command_words())

    def idf(self, words) -> dict[str, float]:
        """IDF of each word (analysed terms) over this index's chunks."""
        return idf_weights(self.index.catalog.term_stats(list(words)))

    # questions about a whole document ----------------------------------------
    def _about_document(self, kind: str, query: str, doc_ids: list[str] | None,
                        docs_by_id: dict[str, Document], mode: str, final) -> Iterator[str | Answer]:
        """Answer "summarize it", "who wrote it", "when was it published", "what is its title"."""
        doc = self._target_document(query, doc_ids, docs_by_id)
        if doc is None:
            example = next(iter(docs_by_id.values())).source
            text = WHICH_DOCUMENT.format(example=example)
            yield final(text, True, kind=kind)
            return
        catalog = self.index.catalog
        chunks = catalog.chunks(sorted(catalog.chunk_ids(doc.doc_id)))
        if kind != overview.SUMMARY:
            yield final(*self._metadata_answer(kind, doc, chunks), kind=kind)
            return
        picked = overview.summarize(overview.document_sentences(chunks))
        if not picked:
            yield final(f"{doc.source} has no sentences to summarize.", True, kind=kind)
            return
        hits: list[Hit] = []
        marks = Marks()
        parts = []
        for p in picked:
            chunk = next(c for c in chunks if c.start <= p.start and p.end <= c.end)
            if all(h.chunk.chunk_id != chunk.chunk_id for h in hits):
                hits.append(Hit(chunk, 0.0, None))
            n = next(i for i, h in enumerate(hits, 1) if h.chunk.chunk_id == chunk.chunk_id)
            marks.add(n, p.start - chunk.start, p.end - chunk.start)
            parts.append(f"{' '.join(p.text.split())} [{n}]")
        extractive = " ".join(parts)
        if mode != "generate":
            yield extractive
            yield final(extractive, False, hits, marks, kind=kind)
            return
        budget = self._budget()
        shown = fit_passages(SUMMARY_PROMPT, hits, budget)
        messages = build_messages(SUMMARY_PROMPT, shown)
        raw = ""
        for piece in stream_text(self.llm, messages, self.settings.max_answer_tokens):
            raw += piece
            yield piece
        texts = [h.chunk.text for h in shown]
        from assistant.answer import add_missing_markers, clean_markers

        written, checked, _ = check_claims(add_missing_markers(clean_markers(raw, len(shown)), texts),
                                           texts, [doc.title or ""] * len(shown))
        if written:
            yield final(written, False, shown, checked, "generate", asked_llm=True, kind=kind)
        else:  # nothing the model wrote is supported: the extractive summary
            yield final(extractive, False, hits, marks, asked_llm=True, kind=kind)

    def _target_document(self, query: str, doc_ids: list[str] | None,
                         docs_by_id: dict[str, Document]) -> Document | None:
        """The document a document-level question is about: the one chosen, the only one, or
        the one the question's other words find ("Summarize the article about WeChat")."""
        if doc_ids:
            return docs_by_id.get(doc_ids[0])
        if len(docs_by_id) == 1:
            return next(iter(docs_by_id.values()))
        words = overview.topic_words(query)
        if not words:
            return None
        hits = self.retriever.search(" ".join(words), 1)
        return docs_by_id.get(hits[0].chunk.doc_id) if hits else None

    def _metadata_answer(self, kind: str, doc: Document, chunks: list) -> tuple:
        """(text, abstained, hits, marks) for a title, author or date question, cited where it is."""
        value = {overview.TITLE: doc.title, overview.AUTHOR: doc.author, overview.DATE: doc.date}[kind]
        found = [x for x in self.index.catalog.sections(doc.doc_id, kinds=(kind,))]
        if not value or not found:
            what = {overview.TITLE: "what its title is", overview.AUTHOR: "who wrote it",
                    overview.DATE: "when it was written or published"}[kind]
            return f"{doc.source} does not say {what}.", True, [], None
        section = found[-1] if kind == overview.AUTHOR else found[0]  # a byline at the end signs it
        chunk = next((c for c in chunks if c.start <= section.start and section.end <= c.end), None)
        if chunk is None:
            return f"{doc.source} does not say.", True, [], None
        marks = Marks()
        marks.add(1, section.start - chunk.start, section.end - chunk.start)
        marks.add(1, section.start - chunk.start, section.end - chunk.start, answer=True)
        return f"{' '.join(value.split())} [1]", False, [Hit(chunk, 0.0, None)], marks


def choose_passages(candidates: int, k: int, ev: Evidence) -> list[int]:
    """Which of the candidate passages to show, in order: the passage holding the best
    sentence first, then the ``k`` best ranked (the last of them left out when the best
    sentence's passage ranked below them).

    Reading beats ranking for the first place: on the dev splits the passage shown first
    holds the answer for 0.812 of SQuAD questions in this order against 0.675 in retrieval
    order (Debian HTML 0.943 against 0.743; ``docs/answers.md``).
    """
    order = list(range(min(k, candidates)))
    if ev.sentences and order:
        best = ev.sentences[0].hit
        order = [best] + [i for i in order if i != best][: len(order) - 1]
    return order


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
