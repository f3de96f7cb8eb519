"""Misspelt question words, corrected to words the documents use.

A word no chunk holds weighs most in a question (it has the highest IDF), so a typo hides the
sentence that answers. ``correct`` replaces such a word, when it is no English word
(``is_english``), by a spelling one edit away that the documents use and that is a word:
"When did the minstry join WeChat?" becomes "When did the ministry join WeChat?". Under
``SWAP_ONLY_UNDER`` letters only two swapped letters count; words under ``MIN_LETTERS`` or over
``MAX_LETTERS`` letters are left alone. Each rule and what it prevents: docs/answers.md.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Callable, Iterable

from index.embedding.embedder import TOKENIZER
from index.text.terms import STOPWORDS, terms

# Shorter words are left alone; under SWAP_ONLY_UNDER letters only two swapped letters count
# ("jion", "teh"): chosen on the SQuAD and CoQA dev questions, so that none of their
# corrections is wrong (docs/answers.md).
MIN_LETTERS = 3
SWAP_ONLY_UNDER = 6
# Longer words are left as typed (their edits would cost time and are rarely typos).
MAX_LETTERS = 20
# At most this many words of one question are tried, each against at most MAX_LOOKUPS
# spellings looked for in the passages: a bound on the cost, not tuned.
MAX_TRIED = 3
MAX_LOOKUPS = 4
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# endings that make a word from an English word, with what the ending replaced ("cities": "y")
_ENDINGS = (("ies", "y"), ("ied", "y"), ("ier", "y"), ("iest", "y"), ("ily", "y"), ("s", ""), ("es", ""),
            ("ed", ""), ("ed", "e"), ("d", ""), ("ing", ""), ("ing", "e"), ("er", ""), ("er", "e"),
            ("ers", ""), ("ers", "e"), ("est", ""), ("ly", ""), ("ment", ""), ("ments", ""), ("ness", ""))
# a stopword with a contraction's ending, typed without the apostrophe: "dont", "youre", "theyre"
_CONTRACTION = re.compile(r"(\w+?)(nt|t|re|ve|ll|d|m|s)")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_SENTENCE_START = re.compile(r"(?:^|[.?!(\n])[\s\"'“‘¿¡]*$")


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """English words spelt right, whatever the documents hold: the whole lower-case words of
    the embedder's tokenizer vocabulary (all-MiniLM-L6-v2's WordPiece, in ``index/models``)
    and pyspellchecker's English word list (160,000 words)."""
    from spellchecker import SpellChecker

    vocab = json.loads(TOKENIZER.read_text(encoding="utf-8"))["model"]["vocab"]
    listed = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return frozenset(w for w in vocab if w.isalpha() and w.islower()) | frozenset(listed)


def is_english(word: str) -> bool:
    """Whether ``word`` is an English word by ``english_words``, one of them with an ending
    added ("sender" is "send" + "er", "tied" is "tie" + "d", "stopped", "cities"), or a
    stopword's contraction typed without its apostrophe ("dont", "youre", "isnt")."""
    english = english_words()
    if word in english or word == "wont":
        return True
    contraction = _CONTRACTION.fullmatch(word)
    if contraction and contraction.group(1) in STOPWORDS:
        return True
    for ending, restore in _ENDINGS:
        base = word[:-len(ending)]
        if word.endswith(ending) and len(base) >= 3:
            if base + restore in english or (base[-1] == base[-2] and base[:-1] in english):
                return True
    return False


def edits(word: str) -> list[str]:
    """Every string one edit from ``word``: two letters swapped, one changed, one added,
    one dropped (in that order, without repeats)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    swapped = _swaps(word)
    changed = [a + c + b[1:] for a, b in splits if b for c in _LETTERS if c != b[0]]
    added = [a + c + b for a, b in splits for c in _LETTERS]
    dropped = [a + b[1:] for a, b in splits if b]
    return list(dict.fromkeys(swapped + changed + added + dropped))


def _swaps(word: str) -> list[str]:
    """Every string ``word`` becomes by swapping two neighbouring (different) letters."""
    return [word[:i] + word[i + 1] + word[i] + word[i + 2:]
            for i in range(len(word) - 1) if word[i] != word[i + 1]]


def _stopword(options: list[str]) -> str | None:
    """The one stopword among a word's ``options``, if exactly one is ("teh" → "the")."""
    near = [e for e in options if e in STOPWORDS]
    return near[0] if len(near) == 1 else None


def correct(question: str, frequency: Callable[[list[str]], dict[str, int]],
            spelt: Callable[[str], bool], known: Iterable[str] = ()) -> str:
    """``question`` with its misspelt words replaced; the same string when none is.

    Args:
        question: what the user typed.
        frequency: how many chunks hold each analysed term (``index.text.terms.terms``); 0 for none.
        spelt: whether a passage has this word, spelt so in lower case.
        known: words spelt right and to correct to whatever the documents hold (the
            assistant's command words, "summarize", "author").

    Returns:
        The question with each word the index lacks replaced by the one stopword within an
        edit of it, or else by a spelling one edit away that is a word (``_spelling``); a
        word with neither stays as typed.
    """
    known_words = set(known)
    known_terms = {t for w in known_words for t in terms(w)}
    words = [(m, w) for m, w in _plain_words(question)
             if not is_english(w) and not set(terms(w)) <= known_terms]
    if not words:
        return question
    counts = frequency(sorted({t for _, w in words for t in terms(w)}))
    unknown = [(m, w) for m, w in words if not all(counts.get(t, 0) for t in terms(w))][:MAX_TRIED]
    if not unknown:
        return question
    options = {w: _options(w) for _, w in unknown}
    wanted = {t for found in options.values() for e in found for t in terms(e)} - known_terms
    held = frequency(sorted(wanted)) if wanted else {}
    out, last = [], 0
    for m, w in unknown:
        commands = [e for e in edits(w) if e in known_words] if len(w) >= MIN_LETTERS else []
        fixed = _stopword(options[w]) or (commands[0] if commands else None) \
            or _spelling(w, options[w], held, spelt)
        if fixed is None:
            continue
        if m.group()[:1].isupper():
            fixed = fixed[:1].upper() + fixed[1:]
        out.append(question[last:m.start()] + fixed)
        last = m.end()
    return "".join(out) + question[last:]


def _options(word: str) -> list[str]:
    """The spellings ``word`` may have been meant as, by its length (module docstring)."""
    if len(word) < MIN_LETTERS:
        return []
    return _swaps(word) if len(word) < SWAP_ONLY_UNDER else edits(word)


def _spelling(word: str, options: list[str], held: dict[str, int], spelt: Callable[[str], bool]) -> str | None:
    """The first of ``word``'s ``options`` whose term the index holds and that is an English word or
    found in a passage. Tried first: those keeping the typed word's first letter, then those
    whose term the most chunks hold (at most ``MAX_LOOKUPS`` passage lookups)."""
    single = [e for e in options if len(terms(e)) == 1 and held.get(terms(e)[0])]
    # a typo rarely hits the first letter: "scounting" is "scouting" before "counting"
    likely = sorted(single, key=lambda e: (e[:1] != word[:1], -held[terms(e)[0]]))
    if english := [e for e in likely if e in english_words()]:  # listed as it is: no endings guessed
        return english[0]
    return next((e for e in likely[:MAX_LOOKUPS] if spelt(e)), None)


def _plain_words(question: str) -> list[tuple[re.Match, str]]:
    """The question's words a typo correction may touch, as (match, lower-case word): words
    of a-z letters only, in lower case or capitalised where a sentence starts. Left out:
    names, acronyms, stopwords, contractions, words over ``MAX_LETTERS`` letters, and words
    in code (next to ``_ / ` -``, a dot inside a name, a bracket after it, or a digit)."""
    out = []
    for m in _WORD.finditer(question):
        word = m.group()
        before, after = question[max(0, m.start() - 1):m.start()], question[m.end():m.end() + 2]
        in_code = (before and before in "_./`\\-") or (after[:1] and after[:1] in "_(/`\\-") \
            or re.match(r"\.\w", after) or any(c.isdigit() for c in before + after[:1])
        if in_code or not word.isascii() or len(word) > MAX_LETTERS:
            continue
        starts = _SENTENCE_START.search(question[:m.start()]) is not None
        lower = word.lower() if starts and word[:1].isupper() and word[1:].islower() else word
        if lower.isalpha() and lower.islower() and lower not in STOPWORDS:
            out.append((m, lower))
    return out
