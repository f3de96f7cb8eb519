"""Evidence: which sentence of the retrieved passages answers the question, and how surely.

Every sentence of the candidate passages is described by named features (the functions
below) and scored by two logistic models: ``RANK_WEIGHTS`` order the sentences (which one
holds the answer), and ``ANSWER_WEIGHTS`` turn the best one's features into a confidence
that the passages answer at all; under ``ANSWER_THRESHOLD`` the assistant abstains. The only
model involved is the retrieval embedder (the "dense" feature); the rest counts words.
The features, how the weights are fitted and the rules around them: docs/answers.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from assistant.pipeline.question import DATE, NUMBER, Question, acronyms_in, analyse
from assistant.pipeline.spans import best_span
from index.text.sentences import sentence_spans
from index.text.terms import terms

# Which sentence answers (fitted on questions of the SQuAD v1.1 dev articles by eval/fit_evidence.py).
RANK_WEIGHTS = {"bias": -3.95, "coverage": -0.94, "context_coverage": 3.56, "bigrams": 1.06, "dense": 0.99,
                "kind": 0.06, "kind_near": 0.13, "rank": 1.72, "coverage_gap": 5.94, "dense_gap": 6.24}
# The same without the dense feature: picks which sentences get embedded at all.
PRESCORE_WEIGHTS = {"bias": -4.83, "coverage": -0.22, "context_coverage": 3.51, "bigrams": 0.99,
                    "kind": 0.19, "kind_near": 0.11, "rank": 2.47, "coverage_gap": 7.31}
# Whether the passages answer at all, from the best sentence (fitted on the same articles, with
# questions whose article or paragraph was taken out of the index as the unanswerable ones).
ANSWER_WEIGHTS = {"bias": -6.86, "coverage": 1.57, "context_coverage": 4.42, "dense": 5.78, "bigrams": 1.67,
                  "kind": -0.12, "names_near": 0.93}
# Confidence needed to answer: the highest threshold refusing at most 5% of the answerable SQuAD
# dev questions, since refusing an answerable question is as much a failure as answering an
# unanswerable one (docs/answers.md).
ANSWER_THRESHOLD = 0.3
# In a conversation, the passages come first from the document being discussed and a follow-up
# names little of what it asks about ("What color was it?"), so less is needed (tuned on the
# CoQA dev stories; docs/answers.md).
FOLLOWUP_ANSWER_THRESHOLD = 0.1
# In auto mode, a confidence this high (or the lower threshold of a follow-up) is quoted without
# asking the LLM (tuned on the dev splits).
QUOTE_THRESHOLD = 0.3
DENSE_CANDIDATES = 12  # sentences embedded per question (the best by the other features)
REQUIRED_KINDS = (DATE, NUMBER)  # only sentences holding one can answer such a question

_LEANS = re.compile(r"^\W*(it|its|it's|this|these|that|those|they|their|them|he|his|him|she|her|such|"
                    r"there|then|the latter|the former|both|each|also|however|but|thus|therefore)\b", re.I)
_TITLE_WORDS = re.compile(r"\b(headline|title|heading)s?\b", re.I)
_SUBJECTLESS = re.compile(r"^\W*(returns?|gets?|sets?|creates?|makes?|raises?|removes?|adds?|deletes?|"
                          r"lists?|shows?|prints?|reads?|writes?|opens?|closes?|starts?|stops?|runs?|"
                          r"converts?|changes?|checks?|tests?|takes?|gives?|is|are|was|were|can|may|must|"
                          r"should|used|useful|equivalent|same|like|see|note)\b", re.I)


@dataclass(frozen=True)
class Passage:
    """What evidence needs of a retrieved passage: its text, its document's title, and its
    structure as (start, end, kind, text) with offsets relative to ``text`` (a heading or
    term the passage sits under starts before 0)."""

    text: str
    title: str | None = None
    sections: tuple[tuple[int, int, str, str], ...] = ()


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence of passage ``hit``: where it is, its score, and what goes with it.

    ``start``/``end`` are offsets into the passage's text; ``span`` is the answer's
    (start, end) inside ``text`` when the question asks for a kind of thing the sentence
    holds; ``label`` names what the sentence describes when it does not say so itself (the
    definition term or heading it sits under); ``before`` is the previous sentence's
    (start, end) when this one leans on it ("It ...", "This ...").
    """

    hit: int
    start: int
    end: int
    text: str
    score: float
    span: tuple[int, int] | None = None
    label: str | None = None
    before: tuple[int, int] | None = None
    features: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Evidence:
    """Candidate sentences best first, the confidence that they answer, names of the
    question no passage mentions, and the confidence needed to answer."""

    question: Question
    sentences: list[Sentence]
    confidence: float = 0.0
    missing: list[str] = field(default_factory=list)
    threshold: float = ANSWER_THRESHOLD
    read: bool = False  # the reader read the passages: only a span it found may lead a quote
    margin: float | None = None  # how far the reader's span in the best sentence beats "no answer"

    @property
    def score(self) -> float:
        return self.confidence

    @property
    def answerable(self) -> bool:
        return bool(self.sentences) and not self.missing and self.confidence >= self.threshold

    @property
    def strong(self) -> bool:
        return self.answerable and self.confidence >= min(QUOTE_THRESHOLD, self.threshold)

    @property
    def nearest_only(self) -> bool:
        """Under the follow-up threshold: only a conversation's document's nearest passage
        (answerable at all through ``CONVERSATION_DOCUMENT_THRESHOLD``), not an answer."""
        return self.confidence < FOLLOWUP_ANSWER_THRESHOLD

    def only(self, hits: Sequence[int]) -> "Evidence":
        """The evidence restricted to some passages, renumbered in the order given."""
        position = {h: i for i, h in enumerate(hits)}
        kept = [_renumber(s, position[s.hit]) for s in self.sentences if s.hit in position]
        return Evidence(self.question, kept, self.confidence if kept else 0.0, self.missing, self.threshold,
                        self.read, self.margin if self.sentences and self.sentences[0].hit in position else None)


def _renumber(s: Sentence, hit: int) -> Sentence:
    return Sentence(hit, s.start, s.end, s.text, s.score, s.span, s.label, s.before, s.features)


# ----------------------------------------------------------------------------- features
def idf_weights(stats: tuple[int, dict[str, int]]) -> dict[str, float]:
    """BM25's IDF of each term from (number of chunks, document frequency per term)."""
    total, df = stats
    return {t: math.log(1 + (total - n + 0.5) / (n + 0.5)) for t, n in df.items()}


def coverage(asked: Sequence[str], present: set[str], idf: dict[str, float]) -> float:
    """Share of the question's words, each weighted by its IDF, found in ``present``.

    Rare words weigh more: "Broncos" matters more than "team".
    """
    total = sum(idf.get(t, 1.0) for t in asked)
    if not total:
        return 0.0
    return sum(idf.get(t, 1.0) for t in asked if t in present) / total


def bigram_share(asked: Sequence[str], sentence_terms: list[str]) -> float:
    """Share of the question's adjacent word pairs that are adjacent in the sentence too."""
    pairs = set(zip(asked, asked[1:]))
    if not pairs:
        return 0.0
    return len(pairs & set(zip(sentence_terms, sentence_terms[1:]))) / len(pairs)


def is_heading(sentence: str) -> bool:
    """A short line without final punctuation: a title or heading, not a statement."""
    return not re.search(r"[.!?…][\"'”’)\]]*$", sentence) and len(sentence.split()) <= 12


def looks_like_code(sentence: str) -> bool:
    """A line of code or a shell command, to cite but never to quote as the answer.

    Prevents answers like "$ sudo apt-get install foo [1]": a prompt sign, or a line
    dense with code punctuation ({}, ;, =, ->, ()) and few plain words.
    """
    s = sentence.strip()
    if re.match(r"^(\$|#|>>>|\.\.\.|%|C:\\>)\s", s):
        return True
    symbols = len(re.findall(r"[{}\[\]();=<>|&*/\\_]", s))
    words = len(re.findall(r"\b[a-zA-Z]{2,}\b", s))
    return symbols >= 4 and symbols > words


def subject_of(sentence: str) -> str:
    """What a sentence is about, roughly: its words before the first verb-like word (at most
    five): "Belgium" of "Belgium lies to the north of France."."""
    words = sentence.split()
    out = []
    for w in words[:5]:
        bare = re.sub(r"\W", "", w).lower()
        if out and (bare.endswith(("s", "ed")) and not w[:1].isupper() or bare in _VERBS):
            break
        out.append(w)
    return " ".join(out)


_VERBS = {"is", "are", "was", "were", "has", "have", "had", "lies", "lay", "became", "becomes", "remains",
          "will", "would", "can", "could", "may", "might", "must", "should", "does", "did", "do"}


def leans_on_previous(sentence: str) -> bool:
    """A sentence that opens with a pronoun or "This", so it needs the one before to be read."""
    return bool(_LEANS.match(sentence))


def missing_names(question: Question, passages: Sequence[str], titles: Sequence[str]) -> list[str]:
    """Names and numbers of the question that no passage (nor its title) contains.

    An acronym counts as found when a passage spells it out ("MSS" ↔ "Ministry of State
    Security"), and a spelled-out name when a passage has its acronym.
    """
    known: set[str] = set()
    acronyms: set[str] = set()
    for text in list(passages) + list(titles):
        known.update(terms(text))
        acronyms |= acronyms_in(text) | set(re.findall(r"\b[A-Z]{2,}\b", text))
        known.update(str(v) for v in roman_numerals(text))  # "Class I" for "Class 1"
    missing = [w for w in question.salient
               if not (set(terms(w)) <= known or (w.isupper() and w in acronyms)
                       or ((value := roman_value(w)) is not None and str(value) in known))]
    if missing and acronyms_in(question.text) & acronyms:  # the question spells out an acronym found
        spelled = {w for w in re.findall(r"[A-Z][\w’'-]*", question.text)}
        missing = [w for w in missing if w not in spelled]
    return missing


def nearness(q: Question, sentence: str, span: tuple[int, int] | None) -> float:
    """1 / (1 + about how many words separate the answer span from the nearest question word):
    "41 metres tall" answers "How tall ...?" better than a number at the other end of the sentence."""
    if span is None:
        return 0.0
    asked = set(q.terms)
    positions = [m.start() for m in re.finditer(r"\w+", sentence) if set(terms(m.group())) & asked]
    if not positions:
        return 0.0
    gap = min(min(abs(p - span[0]), abs(p - span[1])) for p in positions)
    return 1.0 / (1.0 + gap / 6)  # about six characters a word


_OWNED = re.compile(r"\bthe\s+([a-z]+)\s+of\s+((?:the\s+)?[A-Z][\w’'-]*(?:\s+(?:of\s+)?[A-Z][\w’'-]*)*)")


def owned_by_others(question: str, passages: Sequence[Passage]) -> bool:
    """For "What is the capital of France?": the passages give a capital, but only other
    places' ("Madrid is the Spanish capital.", "Its capital is Brussels." after "Belgium
    lies ..."), never France's. Then they do not answer, however well the words match.

    The owner of the noun in a sentence is the capitalised word before it ("Spanish capital"),
    the name after "of" ("the capital of Spain"), or, for "its"/"their", the subject of the
    sentence before. A sentence with the noun and no owner found counts as possibly the asked one.
    """
    m = _OWNED.search(question)
    if not m:
        return False
    noun, owner = m.group(1).lower(), set(terms(m.group(2)))
    if not owner or noun in {"name", "number", "end", "beginning", "rest", "part", "one", "most", "some"}:
        return False
    seen_other = False
    for passage in passages:
        spans = sentence_spans(passage.text)
        for j, (s, e) in enumerate(spans):
            sentence = passage.text[s:e]
            for hit in re.finditer(rf"\b(\w+)\s+{noun}s?\b|\b{noun}s?\s+of\s+(?:the\s+)?([A-Z][\w’'-]*)", sentence, re.I):
                before_word, after_name = hit.group(1), hit.group(2)
                if after_name:
                    found = set(terms(after_name))
                elif before_word and before_word.lower() in ("its", "their") and j > 0:
                    found = set(terms(subject_of(passage.text[spans[j - 1][0]:spans[j - 1][1]])))
                elif before_word and before_word[0].isupper() and before_word.lower() not in ("the", "a", "an"):
                    found = set(terms(before_word))
                else:
                    found = set()
                if not found or owner & found or _demonym_of(before_word or "", owner):
                    return False  # the asked owner's, or an unknown owner's
                seen_other = True
    return seen_other


def _demonym_of(word: str, owner: set[str]) -> bool:
    """"French" for France, "German" for Germany: a shared stem of four letters or more."""
    w = word.lower()
    return any(len(o) >= 4 and w[:4] == o[:4] for o in owner)


def logistic(weights: dict[str, float], features: dict[str, float]) -> float:
    """The logistic model's probability for ``features`` (missing features count as 0)."""
    z = weights["bias"] + sum(w * features.get(k, 0.0) for k, w in weights.items() if k != "bias")
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


# ----------------------------------------------------------------------------- candidates
def _context(passage: Passage, position: int) -> tuple[str | None, list[str]]:
    """(the term a sentence at ``position`` defines, the headings it sits under)."""
    term, headings = None, []
    for start, end, kind, text in passage.sections:
        if start > position:
            break
        if kind == "heading":
            headings.append(text)
            term = None  # a new heading ends the previous definition list entry
        elif kind == "term" and end <= position:
            term = text
    return term, headings


def _inside(passage: Passage, start: int, end: int, kind: str) -> bool:
    return any(a < end and b > start and k == kind for a, b, k, _ in passage.sections)


def gather(question: str, passages: Sequence[Passage], idf: Callable[[Sequence[str]], dict[str, float]],
           similarity: Callable[[list[str]], list[float]] | None) -> tuple[Question, list[dict]]:
    """Candidate sentences of the passages with their features (unscored), for ``evidence``
    and for refitting the weights."""
    q = analyse(question)
    weights = idf(q.terms)
    asks_title = bool(_TITLE_WORDS.search(question))
    rows: list[dict] = []
    seen: set[str] = set()
    for i, passage in enumerate(passages):
        rows.extend(_passage_rows(q, i, passage, weights, asks_title, seen))
    return q, _compared(q, rows, similarity)


def _passage_rows(q: Question, i: int, passage: Passage, weights: dict[str, float], asks_title: bool,
                  seen: set[str]) -> list[dict]:
    """The candidate sentences of passage ``i`` with their features; ``seen`` keeps a sentence
    repeated in several passages to its first."""
    rows: list[dict] = []
    text = passage.text
    spans = sentence_spans(text)
    sentence_terms = [terms(text[s:e]) for s, e in spans]
    title_terms = set(terms(passage.title or ""))
    for j, (s, e) in enumerate(spans):
        sentence = text[s:e]
        key = " ".join(sentence.split())
        # table rows read on their own; a headline is a candidate when the question asks about it
        row_like = _inside(passage, s, e, "row") or (asks_title and _inside(passage, s, e, "title"))
        if key in seen or _inside(passage, s, e, "code") or looks_like_code(sentence):
            continue
        if not row_like and (is_heading(sentence) or _inside(passage, s, e, "term")):
            continue
        seen.add(key)
        term, headings = _context(passage, s)
        present = set(sentence_terms[j])
        before = spans[j - 1] if j > 0 and leans_on_previous(sentence) \
            and not is_heading(text[spans[j - 1][0]:spans[j - 1][1]]) else None
        if before is not None:  # "Its capital is Brussels." is about the subject of the sentence before
            present = present | set(terms(subject_of(text[before[0]:before[1]])))
        near = present | title_terms | set(terms(" ".join(headings + [term or ""])))
        around = set(near)
        for k in (j - 1, j + 1):
            if 0 <= k < len(spans):
                around |= set(sentence_terms[k])
        label = term or (headings[-1] if headings and _SUBJECTLESS.match(sentence)
                         and len(headings[-1].split()) <= 8 else None)
        span = best_span(q, sentence)
        rows.append({
            "hit": i, "start": s, "end": e, "text": sentence, "span": span, "label": label,
            "before": before, "near": near,
            "features": {
                "coverage": coverage(q.terms, present, weights),
                "context_coverage": coverage(q.terms, around, weights),
                "bigrams": bigram_share(q.terms, sentence_terms[j]),
                "kind": 1.0 if span is not None else 0.0,
                "kind_near": nearness(q, sentence, span),
                "names_near": names_near(q, near),
                "rank": 1.0 / (i + 1),
            },
        })
    return rows


def _compared(q: Question, rows: list[dict], similarity: Callable[[list[str]], list[float]] | None) -> list[dict]:
    """The candidates an answer may come from, with the features that compare each to the best."""
    if q.kind in REQUIRED_KINDS:  # a "when" answer needs a date, a "how many" answer a number
        rows = [r for r in rows if r["span"] is not None]
    if rows:
        top = max(r["features"]["coverage"] for r in rows)
        for r in rows:
            r["features"]["coverage_gap"] = r["features"]["coverage"] - top
    if similarity is not None and rows:
        rows.sort(key=lambda r: -logistic(PRESCORE_WEIGHTS, r["features"]))
        rows = rows[:DENSE_CANDIDATES]
        for row, sim in zip(rows, similarity([r["text"] for r in rows])):
            row["features"]["dense"] = sim
        top = max(r["features"]["dense"] for r in rows)
        for r in rows:
            r["features"]["dense_gap"] = r["features"]["dense"] - top
    return rows


def evidence(question: str, passages: Sequence[Passage], idf: Callable[[Sequence[str]], dict[str, float]],
             similarity: Callable[[list[str]], list[float]] | None = None,
             threshold: float = ANSWER_THRESHOLD) -> Evidence:
    """Score the sentences of ``passages`` (best retrieval rank first) against ``question``.

    Args:
        question: the question (or its standalone rewrite).
        passages: the retrieved passages, best first.
        idf: term → IDF for the question's terms (from the index).
        similarity: cosine similarity of the question to each of a list of sentences (the
            retrieval embedder); None leaves the dense features out (tests).
        threshold: the confidence needed to answer (lower for a follow-up in a conversation).

    Returns:
        The evidence: candidate sentences best first, the confidence, missing names.
    """
    q, rows = gather(question, passages, idf, similarity)
    sentences = [Sentence(r["hit"], r["start"], r["end"], r["text"], logistic(RANK_WEIGHTS, r["features"]),
                          r["span"], r["label"], r["before"], r["features"]) for r in rows]
    sentences.sort(key=lambda s: (-s.score, s.hit, s.start))
    confidence = logistic(ANSWER_WEIGHTS, sentences[0].features) if sentences else 0.0
    if owned_by_others(question, passages):
        confidence = 0.0
    missing = missing_names(q, [p.text for p in passages], [p.title or "" for p in passages])
    return Evidence(q, sentences, confidence, missing, threshold)


def _to_roman(n: int) -> str:
    out = ""
    for value, numeral in ((100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"),
                           (4, "IV"), (1, "I")):
        while n >= value:
            out, n = out + numeral, n - value
    return out


_ROMAN_VALUES = {_to_roman(n): n for n in range(1, 400)}  # the usual way of writing 1 to 399


def roman_value(word: str) -> int | None:
    """The value of a Roman numeral written the usual way ("XLVII" → 47), else None."""
    return _ROMAN_VALUES.get(word)


def roman_numerals(text: str) -> list[int]:
    """Values of the Roman numerals that follow a name in ``text`` ("Super Bowl XLVII",
    "MHC Class I"); a lone "I" only mid-sentence, where it is not the pronoun ("Then I")."""
    out = []
    for m in re.finditer(r"(\S+\s+)?([A-Z][\w’'-]*)\s+([IVXLC]+)\b", text):
        numeral, before = m.group(3), m.group(1)
        if len(numeral) == 1 and (before is None or before.rstrip()[-1:] in ".!?:\"“"):
            continue
        if (value := roman_value(numeral)) is not None:
            out.append(value)
    return out


def names_near(question: Question, near: set[str]) -> float:
    """Share of the question's names and numbers that the sentence mentions, or what it leans on
    (the sentence before it when it opens with "It"/"This", its title, headings, term); 1 when
    the question names nothing.

    Weighs against answering "What is the capital of France?" with "Madrid is the Spanish
    capital." because another sentence of the passage mentions France.

    Prevents answering "What is the capital of France?" with "Madrid is the Spanish capital."
    because another sentence of the passage mentions France.
    """
    names = [w for w in question.salient if not w.isupper()]
    if not names:
        return 1.0
    return sum(set(terms(w)) <= near for w in names) / len(names)
