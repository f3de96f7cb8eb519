"""Misspelt question words, corrected to words the documents use.

"When did the minstry join WeChat?" used to be refused: a word no chunk holds weighs
most in the question (it has the highest IDF), so the sentence that answers seemed
to cover little of it. ``correct`` replaces such a word by a spelling one edit away
(a letter added, dropped, changed, or two swapped) that the documents use, the one
whose term the most chunks hold: "When did the ministry join WeChat?". The chat shows
the question as understood.

It changes only what is likely a typo, to what is surely a word:
- the word typed is one the index does not hold, and not one of the embedder's
  vocabulary of about 22,000 English words, nor one of them with an ending added
  ("tall" is never turned into "hall", nor "sender" into "tender");
- the spelling it becomes is found as it is in a passage (a word whose stem merely
  matches one of the index's is no word: "handeling" never becomes "handeliing"), or is
  one of the assistant's own command words ("autor" → "author");
- names the documents may not have are left alone (capitalised words mid-question, words
  in code or with digits), and so are words shorter than ``MIN_LETTERS``, unless they are
  one edit from exactly one stopword ("teh" → "the"; "hwo" could be "who" or "how").
"""

from __future__ import annotations

import functools
import json
import re
from typing import Callable, Iterable

from index.embedder import TOKENIZER
from index.terms import STOPWORDS, terms

# Shorter words have too many neighbours one edit away to guess which was meant.
MIN_LETTERS = 4
# At most this many words of one question are corrected, each trying at most MAX_LOOKUPS
# spellings against the passages (a keyword search each).
MAX_CORRECTIONS = 3
MAX_LOOKUPS = 4
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# endings that make a word from an English word, with what the ending replaced ("cities": "y")
_ENDINGS = (("ies", "y"), ("ied", "y"), ("ier", "y"), ("iest", "y"), ("ily", "y"), ("s", ""), ("es", ""),
            ("ed", ""), ("ed", "e"), ("d", ""), ("ing", ""), ("ing", "e"), ("er", ""), ("er", "e"),
            ("ers", ""), ("ers", "e"), ("est", ""), ("ly", ""), ("ment", ""), ("ments", ""), ("ness", ""))
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_OPENERS = " \t\"'“‘¿¡"


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Whole lower-case words of the embedder's tokenizer vocabulary (all-MiniLM-L6-v2's
    WordPiece, shipped in ``index/models``): words spelt right, whatever the documents hold."""
    vocab = json.loads(TOKENIZER.read_text(encoding="utf-8"))["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha() and w.islower())


def is_english(word: str) -> bool:
    """Whether ``word`` is an English word by ``english_words``, or one of them with an
    ending added ("sender" is "send" + "er", "tied" is "tie" + "d", "stopped", "cities")."""
    english = english_words()
    if word in english:
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
    swapped = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1 and b[0] != b[1]]
    changed = [a + c + b[1:] for a, b in splits if b for c in _LETTERS if c != b[0]]
    added = [a + c + b for a, b in splits for c in _LETTERS]
    dropped = [a + b[1:] for a, b in splits if b]
    return list(dict.fromkeys(swapped + changed + added + dropped))


def _stopword(word: str) -> str | None:
    """The one stopword ``word`` is an edit away from, if exactly one is."""
    near = [e for e in edits(word) if e in STOPWORDS]
    return near[0] if len(near) == 1 else None


def correct(question: str, frequency: Callable[[list[str]], dict[str, int]],
            spelt: Callable[[str], bool], known: Iterable[str] = ()) -> str:
    """``question`` with its misspelt words replaced; the same string when none is.

    Args:
        question: what the user typed.
        frequency: how many chunks hold each analysed term (``index.terms.terms``); 0 for none.
        spelt: whether a passage has this word, spelt so (any case).
        known: words spelt right and to correct to whatever the documents hold (the
            assistant's command words, "summarize", "author").

    Returns:
        The question with each word the index lacks replaced by the one stopword within an
        edit of it, or else by the spelling one edit away that ``spelt`` finds, trying those
        whose term the most chunks hold first; a word with neither stays as typed.
    """
    known_words = set(known)
    known_terms = {t for w in known_words for t in terms(w)}
    words = [(m, w) for m, w in _plain_words(question)
             if not is_english(w) and not set(terms(w)) <= known_terms]
    if not words:
        return question
    counts = frequency(sorted({t for _, w in words for t in terms(w)}))
    unknown = [(m, w) for m, w in words if not all(counts.get(t, 0) for t in terms(w))][:MAX_CORRECTIONS]
    if not unknown:
        return question
    options = {w: [e for e in edits(w) if len(terms(e)) == 1] for _, w in unknown if len(w) >= MIN_LETTERS}
    wanted = {terms(e)[0] for found in options.values() for e in found}
    held = frequency(sorted(wanted - known_terms)) if wanted - known_terms else {}
    out, last = [], 0
    for m, w in unknown:
        fixed = _stopword(w) or _spelling(options.get(w, []), held, spelt, known_words)
        if fixed is None:
            continue
        if m.group()[:1].isupper():
            fixed = fixed[:1].upper() + fixed[1:]
        out.append(question[last:m.start()] + fixed)
        last = m.end()
    return "".join(out) + question[last:]


def _spelling(options: list[str], held: dict[str, int], spelt: Callable[[str], bool],
              known_words: set[str]) -> str | None:
    """The first of ``options`` that is a command word or that a passage has, trying those
    whose term the most chunks hold first (at most ``MAX_LOOKUPS`` passage lookups)."""
    if found := [e for e in options if e in known_words]:
        return found[0]
    likely = sorted((e for e in options if held.get(terms(e)[0])), key=lambda e: -held[terms(e)[0]])
    return next((e for e in likely[:MAX_LOOKUPS] if spelt(e)), None)


def _plain_words(question: str) -> list[tuple[re.Match, str]]:
    """The question's lower-case words (the first may be capitalised), as (match, word):
    the ones a typo correction may touch. Left out: names, acronyms, stopwords,
    contractions, and words in code (next to ``_ / ` -``, a dot inside a name, a bracket
    after it, or a digit)."""
    out = []
    for m in _WORD.finditer(question):
        word = m.group()
        before, after = question[max(0, m.start() - 1):m.start()], question[m.end():m.end() + 2]
        in_code = (before and before in "_./`\\-") or (after[:1] and after[:1] in "_(/`\\-") \
            or re.match(r"\.\w", after) or any(c.isdigit() for c in before + after[:1])
        if in_code or "'" in word or "’" in word:
            continue
        first = not question[:m.start()].strip(_OPENERS)
        lower = word.lower() if first and word[:1].isupper() and word[1:].islower() else word
        if lower.islower() and lower not in STOPWORDS:
            out.append((m, lower))
    return out
