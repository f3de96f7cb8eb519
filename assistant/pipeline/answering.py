"""The steps of one answer, in order: correct typos, understand a follow-up, pick a
document-level question, retrieve, read the evidence, choose the passages, then quote or
have the LLM write, and check what it wrote (``Answering.stream``)."""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Iterator

from assistant.llm import make_llm
from assistant.llm.base import llm_name, stream_text
from assistant.pipeline import documents, followup, spelling
from assistant.pipeline.compose import (ABSTAIN_TEXT, Marks, add_missing_markers, check_claims, clean_markers,
                                        finalize, lead_span, make_citations, quote)
from assistant.pipeline.evidence import (ANSWER_THRESHOLD, FOLLOWUP_ANSWER_THRESHOLD, Evidence, Passage, evidence,
                                         idf_weights)
from assistant.pipeline.prompt import PromptBudget, build_messages, fit_passages
from assistant.pipeline.read_evidence import focus, read_into
from assistant.pipeline.reader import Reader
from assistant.pipeline.retrieval import Hit, Retriever
from assistant.types import Answer
from index.catalog import Document
from index.index import Index
from index.text.terms import terms

EMPTY_INDEX_TEXT = "No documents are indexed yet; add some first (assistant ingest PATH)."
MAX_QUESTION_CHARS = 2000
# Passages retrieved per question; the evidence is read in all of them, and the ``k`` shown are
# the best ranked, with the one holding the best sentence swapped in when it ranked lower.
CANDIDATE_PASSAGES = 8
# A follow-up is read in CANDIDATE_PASSAGES passages of the document the conversation is about
# (the best match for its last CONVERSATION_WORDS words). When that document does not answer it
# at the follow-up threshold, it is read again in all documents, this many of the conversation's
# document's passages first, and another document answers it only when that one answers it this
# plainly; otherwise the conversation's document answers at any confidence above zero
# (tuned on CoQA dev: docs/answers.md).
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


class Writer:
    """The LLM an answer may be written by: made from the settings on first use (or given),
    its prompt budget read once (a server's window may cost a request to read)."""

    def __init__(self, settings, llm=None):
        self.settings = settings
        self._llm = llm
        self._budget: PromptBudget | None = None

    @property
    def llm(self):
        """The LLM (a llama-index ``LLM``), loaded on first use; None with backend ``none``."""
        if self._llm is None and self.settings.backend != "none":
            with _LLM_LOADING:
                if self._llm is None:
                    self._llm = make_llm(self.settings)
        return self._llm

    @property
    def has_llm(self) -> bool:
        """True when an LLM can be asked (without loading it)."""
        return self._llm is not None or self.settings.backend != "none"

    @property
    def backend(self) -> str:
        return llm_name(self.llm) if self.llm is not None else "none"

    def budget(self) -> PromptBudget:
        """The LLM's prompt budget, read once."""
        if self._budget is None:
            self._budget = PromptBudget.for_llm(self.llm, self.settings.max_answer_tokens)
        return self._budget

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        """The LLM's answer to ``messages``, piece by piece (at most ``max_tokens``, by default
        the settings' ``max_answer_tokens``)."""
        return stream_text(self.llm, messages, max_tokens or self.settings.max_answer_tokens)


class Answering:
    """Answers questions over one index: the steps ``Assistant.stream`` runs.

    Args:
        index: the index to answer from.
        embedder: the embedder its vectors were made with (for sentence similarity).
        retriever: the hybrid search over ``index``.
        writer: the LLM, when an answer is written rather than quoted.
        reader: the reader model (``assistant.pipeline.reader``); None: the rules alone.
    """

    def __init__(self, index: Index, embedder, retriever: Retriever, writer: Writer, reader: Reader | None = None):
        self.index = index
        self.embedder = embedder
        self.retriever = retriever
        self.writer = writer
        self.reader = reader

    def understood(self, question: str, history: list[dict] | None,
                   any_documents: bool) -> tuple[str | None, str]:
        """(rewritten, query): the question as understood when it differs from what was typed
        (typos corrected, a follow-up made to stand alone), and the text to search and read."""
        # typos first ("minstry" → "ministry"): a follow-up's rewrite and the search see the word meant
        typed = question[:MAX_QUESTION_CHARS]
        corrected = self.corrected(typed) if any_documents else typed
        rewritten = followup.rewrite(corrected, history) if history else None
        if rewritten is not None:  # its antecedent may come from an earlier question with a typo
            rewritten = self.corrected(rewritten)
        elif corrected != typed:
            rewritten = corrected
        return rewritten, (rewritten or question)[:MAX_QUESTION_CHARS]

    def stream(self, question: str, history: list[dict] | None, k: int, doc_ids: list[str] | None,
               mode: str) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated, then the final checked ``Answer``
        (arguments checked by ``Assistant.stream``)."""
        docs_by_id = {d.doc_id: d for d in self.index.catalog.documents()}
        rewritten, query = self.understood(question, history, bool(docs_by_id))
        sources = {i: (d.source, d.title) for i, d in docs_by_id.items()}

        def final(text, abstained, hits=(), marks=None, used_mode="extractive", asked_llm=False, kind="answer",
                  lead=None):
            backend = self.writer.backend if asked_llm else "extractive"
            cites = make_citations(list(hits), text, marks, sources)
            return Answer(question, text, abstained, used_mode, backend, cites, rewritten,
                          kind="none" if abstained and kind == "answer" else kind,
                          lead=None if abstained else lead)

        if not docs_by_id:
            yield final(EMPTY_INDEX_TEXT, True)
            return
        about = documents.intent(query)
        if about is not None:
            yield from self._about_document(about, query, doc_ids, docs_by_id, mode, final)
            return
        yield from self._answer(query, k, doc_ids, history, docs_by_id, mode, final)

    def _answer(self, query: str, k: int, doc_ids: list[str] | None, history: list[dict] | None,
                docs_by_id: dict[str, Document], mode: str, final) -> Iterator[str | Answer]:
        """Answer a question about the documents' content: quoted, or written and checked."""
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
            yield final(text, False, hits, marks, lead=lead_span(ev))
            return
        # only what fits the model's window is shown, and only what is shown can be cited
        shown = fit_passages(query, hits, self.writer.budget())
        if shown != hits:
            hits, ev = shown, self.evidence_for(query, shown, docs_by_id, ev.threshold)
            texts = [h.chunk.text for h in hits]
        raw = ""
        for piece in self.writer.stream(build_messages(query, hits)):
            raw += piece
            yield piece
        titles = [docs_by_id[h.chunk.doc_id].title or "" for h in hits]
        text, abstained, quoted, marks = finalize(query, raw, ev, texts, titles)
        yield final(text, abstained, hits, marks, "extractive" if quoted else "generate", asked_llm=True,
                    lead=lead_span(ev))

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
            ev = self.evidence_for(query, candidates, docs_by_id, threshold)
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
        ev = self.evidence_for(query, inside, docs_by_id, FOLLOWUP_ANSWER_THRESHOLD)
        if ev.answerable:
            return inside, ev
        first = inside[:CONVERSATION_PASSAGES]
        ids = {h.chunk.chunk_id for h in first}
        rest = [h for h in self.retriever.search(query, n, doc_ids) if h.chunk.chunk_id not in ids]
        everywhere = (first + rest)[:n]
        ev_all = self.evidence_for(query, everywhere, docs_by_id, FOLLOWUP_ANSWER_THRESHOLD)
        if ev_all.answerable and ev_all.confidence >= CHANGED_SUBJECT_CONFIDENCE:
            return everywhere, ev_all
        if not ev.missing and ev.sentences and ev.confidence >= CONVERSATION_DOCUMENT_THRESHOLD:
            return inside, dataclasses.replace(ev, threshold=CONVERSATION_DOCUMENT_THRESHOLD)
        return everywhere, ev_all

    def _conversation_document(self, history: list[dict], doc_ids: list[str] | None) -> str | None:
        """The document the conversation so far is about: the best match for its last
        ``CONVERSATION_WORDS`` words, questions and answers together, however many turns they
        span."""
        words = []
        for m in reversed(history):
            words = followup.plain(m.get("content") or "").split() + words
            if len(words) >= CONVERSATION_WORDS:
                break
        if not words:
            return None
        hits = self.retriever.search(" ".join(words[-CONVERSATION_WORDS:]), 1, doc_ids)
        return hits[0].chunk.doc_id if hits else None

    def evidence_for(self, query: str, hits: list[Hit], docs_by_id: dict[str, Document],
                     threshold: float = ANSWER_THRESHOLD) -> Evidence:
        """Score every sentence of ``hits`` against the question (``assistant.pipeline.evidence``),
        then have the reader read the best of them (``assistant.pipeline.read_evidence``)."""
        passages = self.passages(hits, docs_by_id)
        ev = evidence(query, passages, self.idf, self.similarity(query), threshold)
        if self.reader is None:
            return ev
        texts = [p.text for p in passages]
        return read_into(ev, texts, self.reader.read(query, texts, focus(ev, texts)))

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

    def corrected(self, question: str) -> str:
        """``question`` with its typos corrected to words the passages use (``assistant.pipeline.spelling``)."""
        catalog = self.index.catalog

        def spelt(word: str) -> bool:  # a passage has it, in lower case (a few passages with its term looked at)
            pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")
            return any(pattern.search(text) for t in terms(word) for text in catalog.texts_with_term(t, 20))

        return spelling.correct(question, lambda words: catalog.term_stats(words)[1], spelt,
                                documents.command_words())

    def idf(self, words) -> dict[str, float]:
        """IDF of each word (analysed terms) over this index's chunks."""
        return idf_weights(self.index.catalog.term_stats(list(words)))

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
        if kind != documents.SUMMARY:
            yield final(*self._metadata_answer(kind, doc, chunks), kind=kind)
            return
        picked = documents.summary_sentences(documents.document_sentences(chunks))
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
        budget = self.writer.budget()
        shown = fit_passages(SUMMARY_PROMPT, hits, budget)
        messages = build_messages(SUMMARY_PROMPT, shown)
        raw = ""
        for piece in self.writer.stream(messages):
            raw += piece
            yield piece
        texts = [h.chunk.text for h in shown]
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
        words = documents.topic_words(query)
        if not words:
            return None
        hits = self.retriever.search(" ".join(words), 1)
        return docs_by_id.get(hits[0].chunk.doc_id) if hits else None

    def _metadata_answer(self, kind: str, doc: Document, chunks: list) -> tuple:
        """(text, abstained, hits, marks) for a title, author or date question, cited where it is."""
        value = {documents.TITLE: doc.title, documents.AUTHOR: doc.author, documents.DATE: doc.date}[kind]
        found = [x for x in self.index.catalog.sections(doc.doc_id, kinds=(kind,))]
        if not value or not found:
            what = {documents.TITLE: "what its title is", documents.AUTHOR: "who wrote it",
                    documents.DATE: "when it was written or published"}[kind]
            return f"{doc.source} does not say {what}.", True, [], None
        section = found[-1] if kind == documents.AUTHOR else found[0]  # a byline at the end signs it
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

    Reading beats ranking for the first place (measured in ``docs/answers.md``).
    """
    order = list(range(min(k, candidates)))
    if ev.sentences and order:
        best = ev.sentences[0].hit
        order = [best] + [i for i in order if i != best][: len(order) - 1]
    return order
