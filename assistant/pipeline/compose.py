"""Composing the answer a user sees: quoting the evidence, and checking a written answer. A quote leads with what was
asked (the date, the name) when the question asks for a kind of thing, names what the
sentence describes when it does not say so itself, and brings the sentence before when it
leans on it. A written (LLM) answer is checked claim by claim: each of its sentences must
be supported by one sentence of a passage it cites, or it is removed; markers pointing at
no given passage are removed; when nothing supported is left, the answer is a quote or an
abstention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.pipeline.evidence import Evidence, Sentence
from assistant.pipeline.question import DATE, NAME, NUMBER, PERSON, PLACE
from assistant.pipeline.read_evidence import reader_lead
from assistant.pipeline.spans import candidates
from assistant.types import Citation
from index.text.sentences import sentence_spans
from index.text.terms import terms

ABSTAIN_TEXT = "The documents do not contain an answer to this question."

# A quote longer than this many words, with what leads it (the answer span, a label, the
# sentence it leans on, "…"), is cut to the part around the question's words, so a reader sees
# what was asked within the first words (tuned on SQuAD dev: docs/answers.md).
QUOTE_WORDS = 30
# ...but the sentence itself is never cut below this many words, whatever leads it.
MIN_QUOTE_WORDS = 12
# A second sentence is added to a quote when the first is shorter than this and the second
# scores at least SECOND_SHARE of the first: a short best sentence leaves room in the quote for
# one nearly as good (tuned on SQuAD dev: docs/answers.md).
SHORT_QUOTE_WORDS = 18
SECOND_SHARE = 0.8
# The sentence a quote leans on ("It ...") is cut to its last this many words, so the answer
# still comes early (tuned on SQuAD dev: docs/answers.md).
BEFORE_WORDS = 10
# Kinds of question whose answer span leads the quote ("1871 — The lighthouse ...").
LEAD_KINDS = (DATE, NUMBER, PERSON, PLACE, NAME)
# When the evidence is only the nearest passage (``Evidence.nearest_only``: a follow-up answered
# from its conversation's document however weakly), the sentence is quoted without naming a span
# of it as the answer, and opens with WEAK_TEXT, so the reader knows it may not answer.
WEAK_TEXT = "Not said directly; the nearest passage:"
# A written sentence is supported when one sentence of a passage it cites holds every name and
# number in it and at least this share of its other content words.
CLAIM_SUPPORT = 0.6
# ...and that sentence must be one of the evidence's best this many for the question.
RELEVANT_SENTENCES = 3
# ... and of those, only sentences scoring at least this share of the best one: low enough to
# keep the sentences that hold the answer (chosen on SQuAD dev: docs/answers.md).
RELEVANT_SHARE = 0.05

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")  # "1,200" is 1200
_NOT_FOUND = re.compile(
    r"not\s+found|do(?:es)?\s+not\s+(?:contain|mention|say|provide|include)|no\s+information|"
    r"cannot\s+(?:find|answer)|can't\s+(?:find|answer)|not\s+mentioned|not\s+provided",
    re.IGNORECASE,
)


@dataclass
class Marks:
    """What to mark in each cited passage (by 1-based number): supporting sentences and the answer."""

    highlights: dict[int, list[list[int]]] = field(default_factory=dict)
    answers: dict[int, list[list[int]]] = field(default_factory=dict)

    def add(self, n: int, start: int, end: int, answer: bool = False) -> None:
        target = self.answers if answer else self.highlights
        span = [start, end]
        if span not in target.setdefault(n, []):
            target[n].append(span)


# ----------------------------------------------------------------------------- quotes
def _squash(text: str) -> str:
    return " ".join(text.split())


def trim_to_question(sentence: str, question_terms: set[str], words: int = QUOTE_WORDS,
                     answer: tuple[int, int] | None = None) -> tuple[int, int]:
    """The part of a long sentence to quote: ``words`` words around the ``answer`` span (the
    reader's) or else around where the question's words are, as (start, end) in ``sentence``;
    the whole sentence when it is short enough."""
    tokens = list(re.finditer(r"\S+", sentence))
    if len(tokens) <= words:
        return 0, len(sentence)
    if answer is not None:
        hits = [i for i, m in enumerate(tokens) if m.start() < answer[1] and m.end() > answer[0]]
    else:
        hits = [i for i, m in enumerate(tokens) if set(terms(m.group())) & question_terms]
    middle = sorted(hits)[len(hits) // 2] if hits else 0
    first = max(0, min(middle - words // 2, len(tokens) - words))
    return tokens[first].start(), tokens[first + words - 1].end()


def _last_words(text: str, words: int) -> int:
    """Where the last ``words`` words of ``text`` start (0 when it is that short)."""
    tokens = list(re.finditer(r"\S+", text))
    return tokens[-words].start() if len(tokens) > words else 0


def lead_span(ev: Evidence) -> str | None:
    """The answer span a quote of ``ev`` leads with: the date, number or name in the best
    sentence, when the question asks for one and the evidence is more than ``nearest_only``; when
    the reader read the passages, its span or none (``read_evidence.reader_lead``)."""
    if ev.read:  # only a span the reader found may lead
        return reader_lead(ev)
    best = ev.sentences[0] if ev.sentences else None
    if best is None or best.span is None or ev.question.kind not in LEAD_KINDS or ev.nearest_only:
        return None
    return best.text[best.span[0]:best.span[1]]


def quote(ev: Evidence, texts: list[str]) -> tuple[str, Marks]:
    """The answer made of the passages' own words, and what to mark in them.

    The best sentence, cut to ``QUOTE_WORDS`` words around the question's words when
    longer ("…" where cut); led by the answer span when the question asks for a date, a
    number or a name (``lead_span``); named by the term or
    heading it describes when it does not say
    ("os.cpu_count(): Return the number of CPUs in the system."); preceded by the sentence
    it leans on ("It ..."); followed by the second best when it is short and nearly as good.
    When the evidence is ``nearest_only`` it opens with ``WEAK_TEXT``: the nearest passage, not an answer.
    """
    best = ev.sentences[0]
    chosen = [best]
    if len(best.text.split()) < SHORT_QUOTE_WORDS and len(ev.sentences) > 1:
        second = ev.sentences[1]
        repeats = second.hit == best.hit and (second.start, second.end) == best.before  # already leads it
        if second.score >= SECOND_SHARE * best.score and second.before is None and not repeats:
            chosen.append(second)
    marks = Marks()
    parts: list[str] = []
    asked = set(ev.question.terms)
    for i, s in enumerate(chosen):
        n = s.hit + 1
        text = texts[s.hit]
        lead = ""
        if i == 0 and lead_span(ev) is not None:
            a, b = s.span
            lead = _squash(s.text[a:b]) + " — "
            marks.add(n, s.start + a, s.start + b, answer=True)
        label = f"{_squash(s.label)}: " if s.label and not set(terms(s.label)) <= set(terms(s.text)) else ""
        before = ""
        if s.before is not None:
            b0, b1 = s.before
            cut = _last_words(text[b0:b1], BEFORE_WORDS)
            before = ("… " if cut else "") + _squash(text[b0 + cut:b1]) + " "
            marks.add(n, b0 + cut, b1)
        hedge = f"{WEAK_TEXT} " if i == 0 and ev.nearest_only else ""
        said = len(f"{hedge}{lead}{label}{before}".split()) if i == 0 else 0
        a, b = trim_to_question(s.text, asked, max(MIN_QUOTE_WORDS, QUOTE_WORDS - said - 2),
                                s.span if i == 0 and ev.read else None)
        body = ("… " if a > 0 else "") + _squash(s.text[a:b]) + (" …" if b < len(s.text) else "")
        marks.add(n, s.start + a, s.start + b)
        parts.append(f"{hedge}{lead}{label}{before}{body} [{n}]")
    return " ".join(parts), marks


# ----------------------------------------------------------------------------- markers
def clean_markers(text: str, n_passages: int) -> str:
    """Keep only ``[n]`` markers that point at a given passage; split ``[1, 2]`` into ``[1][2]``."""

    def fix(match: re.Match) -> str:
        nums = [int(x) for x in re.split(r"\s*,\s*", match.group(1))]
        return "".join(f"[{n}]" for n in nums if 1 <= n <= n_passages)

    text = _MARKER.sub(fix, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def cited_numbers(text: str) -> set[int]:
    return {int(n) for m in _MARKER.finditer(text) for n in re.split(r"\s*,\s*", m.group(1))}


def strip_markers(text: str) -> str:
    return _squash(_MARKER.sub(" ", text))


def says_not_found(text: str) -> bool:
    return bool(_NOT_FOUND.search(text)) or not text.strip()


def add_missing_markers(answer: str, texts: list[str]) -> str:
    """Give each answer sentence without a marker the passage it overlaps most, if any."""
    out = []
    for s, e in sentence_spans(answer):
        sentence = answer[s:e]
        if not _MARKER.search(sentence):
            words = set(terms(sentence))
            overlaps = [len(words & set(terms(t))) for t in texts]
            if words and overlaps and max(overlaps) >= max(2, len(words) // 2):
                best = overlaps.index(max(overlaps))
                end = len(sentence.rstrip(".!?"))
                sentence = f"{sentence[:end]} [{best + 1}]{sentence[end:]}"
        out.append(sentence)
    return " ".join(out)


# ----------------------------------------------------------------------------- claims
def names_and_numbers(text: str) -> list[str]:
    """Capitalised words (past a sentence's first word) and words with digits."""
    out = []
    for s, e in sentence_spans(text):
        words = re.findall(r"[\w'’-]+", text[s:e])
        out += [w for w in words[1:] if w[0].isupper() and terms(w)]
        out += [w for w in words if any(ch.isdigit() for ch in w)]
    return out


def supporting_sentence(claim: str, passage: str, title: str = "",
                        allowed: set[tuple[int, int]] | None = None) -> tuple[int, int] | None:
    """The sentence of ``passage`` that supports ``claim``, as (start, end), or None.

    Supported means: every name and number of the claim is in that sentence (or the
    document's title), and at least ``CLAIM_SUPPORT`` of the claim's other content words
    are too. Prevents a written answer adding what no passage says ("... a cornerstone of
    China's digital economy for years [2]") while it cites a passage about the same subject.
    With ``allowed``, only those sentences (start, end) of the passage may support it.
    """
    body = strip_markers(claim)
    wanted = set(terms(body))
    if not wanted:
        return None
    named = {t for w in names_and_numbers(body) for t in terms(w)}
    title_terms = set(terms(title))
    best, best_share = None, 0.0
    for s, e in sentence_spans(passage):
        if allowed is not None and (s, e) not in allowed:
            continue
        have = set(terms(passage[s:e])) | title_terms
        if not named <= have:
            continue
        share = len(wanted & have) / len(wanted)
        if share >= CLAIM_SUPPORT and share > best_share:
            best, best_share = (s, e), share
    return best


def check_claims(text: str, texts: list[str], titles: list[str],
                 relevant: dict[int, set[tuple[int, int]]] | None = None) -> tuple[str, Marks, list[str]]:
    """Keep the sentences of a written answer that a passage they cite supports.

    With ``relevant`` (passage number → its sentences that answer the question best), only
    those may support a claim: a true sentence about something else ("sea urchins" for "What
    animal lives on Rottnest Island?") is not an answer.

    Returns:
        (the kept text, the supporting sentences to mark, the removed sentences).
    """
    kept, removed, marks = [], [], Marks()
    for s, e in sentence_spans(text):
        claim = text[s:e]
        cited = sorted(n for n in cited_numbers(claim) if 1 <= n <= len(texts))
        support = [(n, supporting_sentence(claim, texts[n - 1], titles[n - 1],
                                           None if relevant is None else relevant.get(n, set())))
                   for n in cited]
        support = [(n, span) for n, span in support if span is not None]
        if not support:
            removed.append(claim)
            continue
        for n, span in support:
            marks.add(n, *span)
        kept.append(claim)
    return " ".join(kept), marks, removed


def relevant_sentences(ev: Evidence, texts: list[str]) -> dict[int, set[tuple[int, int]]]:
    """The sentences a written answer may rest on: the ``RELEVANT_SENTENCES`` best of the
    evidence scoring at least ``RELEVANT_SHARE`` of the best, and the sentences they lean on,
    by passage number."""
    out: dict[int, set[tuple[int, int]]] = {}
    floor = ev.sentences[0].score * RELEVANT_SHARE if ev.sentences else 0.0
    for s in ev.sentences[:RELEVANT_SENTENCES]:
        if s.score < floor:
            break
        spans = out.setdefault(s.hit + 1, set())
        spans.add((s.start, s.end))
        if s.before is not None:
            spans.add(s.before)
    return out


def _adds_evidence(question: str, answer: str, ev: Evidence) -> bool:
    """An answer must say something the best evidence says beyond the question's own words
    (a small model often just restates the question)."""
    asked = set(terms(question))
    novel = set(terms(strip_markers(answer))) - asked
    best = [s for s in ev.sentences[:3]]
    told = set().union(*(set(terms(s.text)) for s in best)) - asked if best else set()
    return bool(novel & told)


def _holds_kind(question_kind: str | None, answer: str) -> bool:
    """A "when" answer holds a date, a "how many" answer a number."""
    if question_kind not in (DATE, NUMBER):
        return True
    return bool(candidates(strip_markers(answer), question_kind))


def _holds_lead(ev: Evidence, answer: str) -> bool:
    """A written answer holds the answer span the evidence names, when it names one: a small
    model may write a true sentence of the passage that does not answer ("3 lamps" for "How
    tall is it?" beside "The tower is 41 metres tall"). Its numbers are what count ("41 m"
    holds "41 metres"), or else the last word of a name ("Thorsby" holds "Agnes Thorsby")."""
    lead = lead_span(ev)
    if lead is None:
        return True
    said = _THOUSANDS.sub("", strip_markers(answer))
    numbers = re.findall(r"\d+", _THOUSANDS.sub("", lead))
    if numbers:
        return all(re.search(rf"(?<!\d){n}(?!\d)", said) for n in numbers)
    words = terms(lead)
    return not words or words[-1] in terms(said)


def finalize(question: str, raw: str, ev: Evidence, texts: list[str],
             titles: list[str]) -> tuple[str, bool, bool, Marks]:
    """Check a written answer.

    Returns:
        (text, abstained, quoted, marks): the checked text; whether it abstains; whether
        it was replaced by a quote (when nothing supported is left and the evidence is
        good enough to answer at all); what to mark in the cited passages.
    """
    if says_not_found(raw):
        return ABSTAIN_TEXT, True, False, Marks()
    text = add_missing_markers(clean_markers(raw, len(texts)), texts)
    text, marks, _removed = check_claims(text, texts, titles, relevant_sentences(ev, texts))
    if (not text or not _adds_evidence(question, text, ev) or not _holds_kind(ev.question.kind, text)
            or not _holds_lead(ev, text)):
        if ev.answerable:
            quoted, marks = quote(ev, texts)
            return quoted, False, True, marks
        return ABSTAIN_TEXT, True, False, Marks()
    return text, False, False, marks


# ----------------------------------------------------------------------------- citations
def make_citations(hits: list, answer: str, marks: Marks | None,
                   sources: dict[str, tuple[str, str | None]]) -> list[Citation]:
    """Citations for every passage given; ``cited`` from the final answer's markers."""
    cited = cited_numbers(answer)
    marks = marks or Marks()
    out = []
    for n, hit in enumerate(hits, 1):
        c = hit.chunk
        source, title = sources.get(c.doc_id, (c.doc_id, None))
        is_cited = n in cited
        out.append(Citation(
            n=n, cited=is_cited, doc_id=c.doc_id, chunk_id=c.chunk_id, source=source, title=title,
            page=c.page, start=c.start, end=c.end, text=c.text,
            highlights=sorted(marks.highlights.get(n, [])) if is_cited else [],
            score=round(hit.score, 6),
            answer_spans=sorted(marks.answers.get(n, [])) if is_cited else [],
        ))
    return out


__all__ = ["ABSTAIN_TEXT", "WEAK_TEXT", "Marks", "Sentence",
           "check_claims", "clean_markers", "cited_numbers", "finalize", "lead_span", "make_citations", "quote",
           "says_not_found", "supporting_sentence", "trim_to_question"]
