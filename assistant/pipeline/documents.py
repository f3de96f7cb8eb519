"""Questions about a document rather than its content: summarize it, who wrote it, when, its title.

``intent`` tells such a question apart ("Summarize the article.", "Who wrote this?", "When
was it published?", "What is the title?"); content questions ("Who wrote Hamlet?") are
not taken. Title, author and date come from what the reader found at ingest (HTML meta
and bylines, PDF metadata, DOCX properties, a byline line in text), cited where they are
in the document's text. A summary is extractive: the document's most central sentences,
not repeating each other, in document order, each cited.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass

from assistant.pipeline.evidence import is_heading, looks_like_code
from index.text.sentences import sentence_spans
from index.text.terms import terms

SUMMARY, TITLE, AUTHOR, DATE = "summary", "title", "author", "date"
SUMMARY_SENTENCES = 6  # at most; fewer for a short document (one per SENTENCES_PER_PICK)
SENTENCES_PER_PICK = 3
REDUNDANCY = 0.7  # weight of a sentence's similarity to the chosen ones against its centrality
SAME_PARAGRAPH = 0.2  # a paragraph already drawn from counts against its other sentences: cover the document
LEAD_BONUS = 0.15  # the first sentences of a document often say what it is about (news, abstracts)

_DOC = (r"(?:document|article|text|story|page|file|paper|report|post|piece|book|essay|chapter|"
        r"manual|guide|letter|memo|note|notes|email|pdf|it|this|that)")
_INTENTS = [
    (re.compile(rf"\b(summari[sz]e|summary|sum (?:it |this |that )?up|tl;?dr|gist|overview|recap)\b|"
                rf"\b(main|key) (points?|ideas?|takeaways?|facts?|messages?|arguments?)\b|"
                rf"\bwhat(?:'s| is| was)? (?:(?:this|that) {_DOC}|this|that|it|the {_DOC})(?: (?:all|mainly|mostly))? about\b", re.I),
     SUMMARY),
    (re.compile(rf"\bwho (?:wrote|authored|penned|published|is the author of|was the author of|is behind) "
                rf"(?:this|that|it|the {_DOC})\b|^\W*who (?:wrote|authored) (?:this|it)\W*$|"
                rf"\bwho is the (?:author|writer)\b(?! of (?!(?:this|that|it|the {_DOC})\b))|"
                rf"\b(?:author|byline|writer) of (?:this|that|it|the {_DOC})\b|^\W*(?:the )?author\W*$", re.I),
     AUTHOR),
    (re.compile(rf"\bwhen (?:was|is) (?:this|that|it|the {_DOC}) (?:published|written|posted|released|"
                rf"dated|from|created)\b|\b(?:publication|release) date\b|"
                rf"\bwhat (?:is the )?date (?:of|on) (?:this|that|it|the {_DOC})\b|"
                rf"\bwhen (?:was|is) (?:this|that|it) from\b", re.I),
     DATE),
    (re.compile(rf"\bwhat(?:'s| is| was) (?:the )?(?:title|headline|name) of (?:this|that|it|the {_DOC})\b|"
                rf"\bwhat(?:'s| is| was) (?:this|that|it|the {_DOC}) (?:called|titled|named)\b|"
                rf"^\W*what(?:'s| is| was) the (?:title|headline)\W*$", re.I),
     TITLE),
]
_INTENT_TEXT = (
    "summarize summarise summary sum up tl dr gist overview recap main key points ideas takeaways facts "
    "messages arguments about document article text story page file paper report post piece book essay "
    "chapter manual guide letter memo note notes email pdf give me please short brief who wrote author "
    "authored writer byline published publication date title headline called named release written")


def intent(question: str) -> str | None:
    """``summary``, ``title``, ``author`` or ``date`` when the question is about a document
    as a whole; None for a question about its content."""
    return next((kind for pattern, kind in _INTENTS if pattern.search(question)), None)


def command_words() -> list[str]:
    """The words document questions are told apart by ("summarize", "author", "headline"):
    spelt right whatever the documents hold, so a typo of one is corrected to it."""
    return _INTENT_TEXT.split()


def topic_words(question: str) -> list[str]:
    """The words of a document-level question that say which document ("... about WeChat")."""
    return [t for t in terms(question) if t not in _intent_words()]


@functools.lru_cache(maxsize=1)
def _intent_words() -> frozenset[str]:
    return frozenset(terms(_INTENT_TEXT))


@dataclass(frozen=True)
class Picked:
    """A sentence of a document: offsets into its extracted text, and its text."""

    start: int
    end: int
    text: str
    paragraph: int = 0


def document_sentences(chunks: list) -> list[Picked]:
    """The sentences of a document, once each, from its chunks (which overlap), in order.

    Headings, titles, code lines and table rows are left out: a summary is made of statements.
    """
    out: list[Picked] = []
    last_end, paragraph = -1, 0
    for chunk in sorted(chunks, key=lambda c: c.start):
        previous = None
        for s, e in sentence_spans(chunk.text):
            start, end = chunk.start + s, chunk.start + e
            if previous is not None and "\n\n" in chunk.text[previous:s] and start >= last_end:
                paragraph += 1
            previous = e
            if start < last_end:
                continue
            text = chunk.text[s:e]
            if is_heading(text) or looks_like_code(text) or " | " in text or len(text.split()) < 5:
                continue
            out.append(Picked(start, end, text, paragraph))
            last_end = end
    return out


def summary_sentences(sentences: list[Picked], limit: int = SUMMARY_SENTENCES) -> list[Picked]:
    """The most central sentences that do not repeat each other, in document order.

    Centrality: cosine similarity of a sentence's TF-IDF vector (over the document's own
    sentences) to the whole document's, plus ``LEAD_BONUS`` for the first two sentences.
    Chosen greedily by maximal marginal relevance: each next sentence maximises
    centrality minus ``REDUNDANCY`` times its similarity to the closest one already chosen,
    and less ``SAME_PARAGRAPH`` when its paragraph already gave one (except the lead
    paragraph, which in news and abstracts is a summary itself), so a summary covers
    several points instead of one point several times.
    """
    if not sentences:
        return []
    bags = [Counter(terms(s.text)) for s in sentences]
    df = Counter(t for bag in bags for t in bag)
    n = len(sentences)
    idf = {t: math.log(1 + n / c) for t, c in df.items()}
    vectors = [_unit({t: c * idf[t] for t, c in bag.items()}) for bag in bags]
    centroid = _unit(dict(sum((Counter(v) for v in vectors), Counter())))
    scores = [_dot(v, centroid) + (LEAD_BONUS if i < 2 else 0.0) for i, v in enumerate(vectors)]
    wanted = max(1, min(limit, math.ceil(n / SENTENCES_PER_PICK)))
    chosen: list[int] = []
    while len(chosen) < wanted:
        left = [i for i in range(n) if i not in chosen and vectors[i]]
        if not left:
            break
        used = {sentences[j].paragraph for j in chosen}
        chosen.append(max(left, key=lambda i: scores[i] - REDUNDANCY * max(
            (_dot(vectors[i], vectors[j]) for j in chosen), default=0.0)
            - (SAME_PARAGRAPH if sentences[i].paragraph in used - {sentences[0].paragraph} else 0.0)))
    return [sentences[i] for i in sorted(chosen)]


def _unit(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {t: v / norm for t, v in vector.items()} if norm else {}


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    return sum(v * b.get(t, 0.0) for t, v in a.items())
