"""Answer spans inside a sentence: the date, the number, the name a question asks for.

Each kind has a small finder; ``best_span`` picks the candidate a question most likely
asks for: not words of the question itself, and nearest to where the question's words
occur in the sentence. Pure functions over text, no models.
"""

from __future__ import annotations

import re

from assistant.pipeline.question import DATE, NAME, NUMBER, PERSON, PLACE, REASON, Question, acronyms_in
from index.text.terms import terms

_MONTH_NAMES = r"January|February|March|April|May|June|July|August|September|October|November|December"
_MONTH = rf"(?:{_MONTH_NAMES}|Jan\.|Feb\.|Mar\.|Apr\.|Jun\.|Jul\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
# A day or month name: a date, not part of a name ("WeChat on Monday") nor a topic.
CALENDAR_WORD = re.compile(rf"(?:{_MONTH_NAMES}|{_DAY})\b")
_YEAR = r"(?:[12]\d{3}|\d{1,4}\s?(?:BC|BCE|AD|CE)|(?:AD|CE)\s?\d{1,4})"
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
# a time of day answers "when" too: "7:15", "7:15 pm", "7 a.m.", "noon" (not "3.14", a number)
_CLOCK = r"(?:[01]?\d|2[0-3]):[0-5]\d(?:\s?[ap]\.?m\b\.?)?|(?:1[0-2]|0?[1-9])(?:\.[0-5]\d)?\s?[ap]\.?m\b\.?|noon|midnight"
_DATES = re.compile(
    rf"\b(?:(?:{_DAY},?\s+)?{_MONTH}\s+{_ORD},?\s+{_YEAR}"
    rf"|(?:{_DAY},?\s+)?(?:the\s+)?{_ORD}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}"
    rf"|(?:early|mid|late)?[- ]?{_MONTH}\s+(?:of\s+)?{_YEAR}"
    rf"|(?:{_DAY},?\s+)?{_MONTH}\s+{_ORD}\b"
    rf"|(?:{_DAY},?\s+)?{_ORD}\s+(?:of\s+)?{_MONTH}"
    rf"|(?:the\s+)?(?:early|mid|late)?[- ]?[12]\d{{2}}0s"
    rf"|(?:the\s+)?(?:\d{{1,2}}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|"
    rf"tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|"
    rf"nineteenth|twentieth|twenty-first)\s+century(?:\s+(?:BC|BCE|AD|CE))?"
    rf"|{_YEAR}(?:\s?[–-]\s?\d{{2,4}})?"
    rf"|(?:early|mid|late)?[- ]?{_MONTH}"
    rf"|{_CLOCK}"
    rf"|{_DAY}|today|yesterday|tomorrow|tonight)\b"
)
_NUMBER_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                 r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
                 r"eighty|ninety|hundred|hundreds|thousand|thousands|dozen|dozens|million|millions|billion|"
                 r"half|quarter|once|twice")
_INT = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_SCALE = r"(?:hundred|thousand|million|billion|trillion|percent|per cent|%)"
_NUMBERS = re.compile(
    rf"(?:(?:about|around|approximately|roughly|over|under|more than|less than|fewer than|nearly|"
    rf"almost|some|up to|at least|at most)\s+)?"
    rf"(?:[$€£¥]\s?)?(?:{_INT}(?:\.\d+)?(?:\s?[–-]\s?{_INT}(?:\.\d+)?)?(?!\s+{_MONTH}|\d)|\b(?:{_NUMBER_WORDS})\b"
    rf"(?:[\s-]+(?:{_NUMBER_WORDS})\b)*)"
    rf"(?:\s?{_SCALE})*(?:\s+(?!{_MONTH}|of\b|and\b|the\b|in\b|to\b|a\b|on\b|at\b|by\b|for\b|was\b|were\b|is\b|are\b)"
    rf"[a-z][a-z-]{{2,}})?",
    re.I,
)
_CAPITALISED = re.compile(
    r"(?<![\w’'-])(?:[A-Z][\w’'.&-]*|\d+(?:st|nd|rd|th)?)(?:\s+(?:(?:of|the|de|del|della|da|di|du|des|la|le|"
    rf"von|van|der|den|y|and|for|on|upon|in)\s+(?!{CALENDAR_WORD.pattern}))*(?:[A-Z][\w’'.&-]*))*"
)
_REASON = re.compile(r"\b(?:because(?: of)?|due to|owing to|as a result of|in order to|so that|since|"
                     r"thanks to|caused by|for fear of)\b[^.;]*", re.I)
_LEADING_FILLER = re.compile(r"^(?:the|a|an|in|on|at|by|of|for|from|to|however|but|and|also|it|its|this|"
                             r"these|those|there|their|his|her|he|she|they|we|after|before|during|when|while|"
                             r"although|though|as|with|since|until|between|among|according)\s+", re.I)
_FINDERS = {DATE: _DATES, NUMBER: _NUMBERS, REASON: _REASON}
# "in 1987" is when, not how many or how much.
_BARE_YEAR = re.compile(r"[12]\d{3}")
_BEFORE_A_YEAR = re.compile(r"\b(?:in|since|until|till|before|after|during)\s+$", re.I)  # not "won by 2000"
_YEAR_SLASH = re.compile(r"[12]\d{3}/$")  # "2008/09": the 09 is the year's end, not a number


def candidates(sentence: str, kind: str) -> list[tuple[int, int]]:
    """Spans of ``sentence`` that could be an answer of ``kind``."""
    if kind in (PERSON, PLACE, NAME):
        out = []
        for m in _CAPITALISED.finditer(sentence):
            s, e = m.start(), m.end()
            while True:  # "The Broncos" → "Broncos"; "In 1871" stays a date, not a name
                filler = _LEADING_FILLER.match(sentence[s:e])
                if not filler or filler.end() >= e - s:
                    break
                s += filler.end()
            text = sentence[s:e].rstrip(".")
            if text and not _LEADING_FILLER.fullmatch(text + " ") and not text.isdigit() \
                    and not CALENDAR_WORD.fullmatch(text) and not _DATES.fullmatch(text):  # "3 March" is a date
                out.append((s, s + len(text)))
        return out
    pattern = _FINDERS.get(kind)
    if pattern is None:
        return []
    out = []
    for m in pattern.finditer(sentence):
        text = m.group()
        if text.strip(" ,.;:-"):
            start = m.start() + len(text) - len(text.lstrip(" -"))
            end = m.end() - (len(text) - len(text.rstrip(" ,.;:")))
            if kind == NUMBER and (_YEAR_SLASH.search(sentence[:start]) or (
                    _BARE_YEAR.fullmatch(sentence[start:end]) and _BEFORE_A_YEAR.search(sentence[:start]))):
                continue
            out.append((start, end))
    return out


NUMBER_NEAR_WORDS = 4  # a number further than this from every question word does not answer "how many"


def _words_between(sentence: str, span: tuple[int, int], anchors: list[int]) -> int:
    """Words between a span and the nearest question word (a large number when there is none)."""
    if not anchors:
        return 1 << 30
    gaps = [sentence[span[1]:a] if a >= span[1] else sentence[a:span[0]] for a in anchors]
    return min(len(g.split()) for g in gaps)


def best_span(question: Question, sentence: str) -> tuple[int, int] | None:
    """The span of ``sentence`` the question most likely asks for, or None.

    A candidate made only of the question's own words (or the acronym of one of its
    names, "AFC" ↔ "American Football Conference") is not an answer. Among the rest, one
    without the question's words wins over one with them ("Which platform did the ministry
    join?": "WeChat", not "Ministry of State Security"), except the noun a which/what asks
    for ("Which university …?": "Graz University"); then the one nearest to the question's
    words in the sentence (ties: the earlier). Measured on SQuAD dev: docs/answers.md.
    """
    if question.kind is None:
        return None
    asked = set(question.terms)
    asked_acronyms = {w.upper() for w in question.salient if w.isupper()} | acronyms_in(question.text)
    found = []
    for s, e in candidates(sentence, question.kind):
        words = set(terms(sentence[s:e]))
        if not words and question.kind not in (NUMBER, DATE):
            continue
        if words and words <= asked:
            continue
        if acronyms_in(sentence[s:e]) & asked_acronyms or sentence[s:e].upper() in asked_acronyms:
            continue
        found.append((s, e))
    if not found:
        return None
    anchors = [m.start() for m in re.finditer(r"\w+", sentence) if set(terms(m.group())) & asked]
    if question.kind == NUMBER:  # a count or measure sits next to what it counts ("41 metres tall")
        found = [span for span in found if _words_between(sentence, span, anchors) <= NUMBER_NEAR_WORDS]
        if not found:
            return None
    if not anchors:
        return found[0]

    head = _asked_noun(question.text)

    def distance(span: tuple[int, int]) -> int:
        return min(min(abs(a - span[0]), abs(a - span[1])) for a in anchors)

    def repeats(span: tuple[int, int]) -> bool:
        return bool(set(terms(sentence[span[0]:span[1]])) & (asked - head))

    return min(found, key=lambda span: (repeats(span), distance(span), span[0]))


def _asked_noun(question: str) -> set[str]:
    """The terms of the noun a which/what/whose question asks for ("Which platform …" → platform)."""
    m = re.search(r"\b(?:which|what|whose)\s+(\w+)", question, re.I)
    return set(terms(m.group(1))) if m else set()
