"""Question analysis: what kind of answer is asked for, which words carry it, what must be found.

Pure functions, no models: they feed the evidence scores (``assistant.pipeline.evidence``) and the
answer's leading span.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from index.text.terms import terms

# Answer kinds a question can ask for (the span finder knows how to find each in a sentence).
DATE, NUMBER, PERSON, PLACE, NAME, REASON = "date", "number", "person", "place", "name", "reason"

_PLACE_NOUNS = (r"country|countries|city|cities|state|states|place|places|region|province|town|county|"
                r"continent|location|island|river|street|area|village|capital|nation|territory|district|"
                r"neighbou?rhood|port|sea|ocean|lake|mountain|building|stadium|venue|university|school|college")
_DATE_NOUNS = r"year|years|date|day|month|time|century|decade|era|period|season|week|hour|age"
_PERSON_NOUNS = (r"person|people|man|woman|men|women|author|writer|king|queen|president|leader|player|"
                 r"scientist|artist|composer|inventor|founder|emperor|ruler|minister|chancellor|director|"
                 r"coach|architect|philosopher|poet|singer|actor|actress|general|pope|bishop|governor|mayor|"
                 r"senator|chairman|chairwoman|ceo|owner|member|child|son|daughter|father|mother|wife|husband")
_KINDS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\bhow (many|much|long|old|tall|far|big|large|high|often|fast|deep|wide|heavy)\b|"
                r"\bwhat (percentage|percent|proportion|fraction|number|amount|size|population|score|rate)\b"
                r"|\b(in|by) how (many|much)\b|\bwhat (is|was|are|were) the (population|number|amount|size|"
                r"percentage|rate|score|height|length|area|cost|price|distance|weight|depth|speed|age)\b", re.I), NUMBER),
    (re.compile(rf"^\W*when\b|\b(what|which|in what|in which|on what|on which) ({_DATE_NOUNS})\b|"
                r"\bsince when\b|\bhow long ago\b", re.I), DATE),
    (re.compile(rf"\b(who|whom|whose)\b|\b(what|which) ({_PERSON_NOUNS})\b", re.I), PERSON),
    (re.compile(rf"^\W*where\b|\bwhere (is|was|are|were|did|do|does)\b|"
                rf"\b(what|which|in what|in which) ({_PLACE_NOUNS})\b", re.I), PLACE),
    (re.compile(r"\bwhy\b|\bwhat (is|was|are|were) the (reason|cause|purpose|motive)s?\b|"
                r"\bfor what (reason|purpose)\b", re.I), REASON),
    (re.compile(r"\bwhat (is|was|are|were) (it|they|he|she|this|that|the \w+) (called|named|known as)\b|"
                r"\b(called|named|known as)\s*\?|\bwhat (company|organi[sz]ation|team|group|party|band|"
                r"club|agency|ministry|department|newspaper|book|film|album|song|language|brand|program|"
                r"programme|platform|network|channel)\b|\bwhich \w+", re.I), NAME),
]
# Words of a question that say what kind of answer is wanted, not what it is about.
QUESTION_NOISE_WORDS = ("document documents article text say says said mention mentions tell know name named "
                        "called according passage")
_WORD = re.compile(r"[\w'’-]+")


@dataclass(frozen=True)
class Question:
    """A question, analysed.

    Attributes:
        text: the question as asked.
        kind: the kind of answer asked for (``DATE``, ``NUMBER``, ``PERSON``, ``PLACE``,
            ``NAME``, ``REASON``), or None when it cannot be told (most "what" questions).
        terms: its content words (stemmed, stopwords and question noise dropped), in order,
            each once.
        salient: names and numbers in it that the documents must mention to answer it.
    """

    text: str
    kind: str | None
    terms: tuple[str, ...]
    salient: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def analyse(question: str) -> Question:
    """Analyse a question (cached: the same question is analysed once)."""
    seen: dict[str, None] = {}
    noise = _noise()
    for t in terms(question):
        if t not in noise:
            seen.setdefault(t, None)
    return Question(question, answer_kind(question), tuple(seen), tuple(salient_words(question)))


@functools.lru_cache(maxsize=1)
def _noise() -> frozenset[str]:
    return frozenset(terms(QUESTION_NOISE_WORDS))


def answer_kind(question: str) -> str | None:
    """The kind of answer a question asks for, by its wording (None: not clear)."""
    return next((kind for pattern, kind in _KINDS if pattern.search(question)), None)


def salient_words(question: str) -> list[str]:
    """Names and numbers of a question: capitalised words past its first word, and words with digits.

    The first word of a question is capitalised by grammar, not because it names something
    ("Name the ...", "Describe ...").
    """
    words = _WORD.findall(question)
    named = [w for w in words[1:] if w[0].isupper() and terms(w) and not _is_roman_or_pronoun(w)]
    numbers = [w for w in words if any(ch.isdigit() for ch in w)]
    return list(dict.fromkeys(named + numbers))


def _is_roman_or_pronoun(word: str) -> bool:
    return word in {"I", "I'm", "I’m"}


def acronym(words: list[str]) -> str:
    """Initials of a name ("Ministry of State Security" → "MSS"; small words skipped)."""
    return "".join(w[0] for w in words if w[:1].isupper()).upper()


def acronyms_in(text: str) -> set[str]:
    """Acronyms of the capitalised word runs of ``text`` (at least two capitalised words)."""
    out = set()
    for run in re.findall(r"(?:[A-Z][\w’'-]*(?:\s+(?:of|the|and|for|de|du|la|von|van)\s+|\s+))+[A-Z][\w’'-]*", text):
        words = run.split()
        for first in range(len(words) - 1):  # "The Ministry of State Security" → TMSS, MSS, SS
            initials = acronym(words[first:])
            if len(initials) >= 2:
                out.add(initials)
    return out
