"""Sentence boundaries: names, initials, abbreviations, numbers, quotes, lines and soft wraps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.text.sentences import sentence_spans
from tests.support.concurrency import at_once


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


@pytest.mark.parametrize("text, expected", [
    # honorifics and initials never end a sentence (cut answers seen on news articles)
    ("An initial investigation led to the arrest of Ms. Smith on Monday. She was released.",
     ["An initial investigation led to the arrest of Ms. Smith on Monday.", "She was released."]),
    ("A comment by the chairwoman of the Federal Reserve, Janet L. Yellen, moved markets. Then calm.",
     ["A comment by the chairwoman of the Federal Reserve, Janet L. Yellen, moved markets.", "Then calm."]),
    ("Dr. Who said hello. Mr. and Mrs. Jones left at 5 p.m. yesterday.",
     ["Dr. Who said hello.", "Mr. and Mrs. Jones left at 5 p.m. yesterday."]),
    ("The U.S. economy grew 2.5 percent in 2015. Prices rose.",
     ["The U.S. economy grew 2.5 percent in 2015.", "Prices rose."]),
    ('He said, "It is over." She nodded.', ['He said, "It is over."', "She nodded."]),
    ("“I’m here,” she said. “Go!” He went.", ["“I’m here,” she said.", "“Go!”", "He went."]),
])
def test_hard_cases(text, expected):
    assert sentences(text) == expected


def test_a_line_break_ends_a_sentence_but_a_soft_wrap_does_not():
    text = ("Installing the system\nTo install, run the installer.\n"
            "This sentence has been\nwrapped by the author. And another.\n\nos.cpu_count()\n"
            "Return the number of CPUs in the system.")
    assert sentences(text) == [
        "Installing the system", "To install, run the installer.",
        "This sentence has been\nwrapped by the author.", "And another.",
        "os.cpu_count()", "Return the number of CPUs in the system."]


def test_lines_of_code_stay_lines():
    text = "$ sudo apt-get install foo\n$ ls -l /etc\n    if x:\n        return y"
    assert sentences(text) == ["$ sudo apt-get install foo", "$ ls -l /etc", "if x:", "return y"]


def test_offsets_are_into_the_given_range():
    text = "skip this. Keep one. Keep two. skip"
    start, end = text.index("Keep"), text.index(" skip")
    assert [text[s:e] for s, e in sentence_spans(text, start, end)] == ["Keep one.", "Keep two."]


@given(st.lists(st.sampled_from(list("ab. \n!?\"'Ms") + ["Dr. ", "U.S. ", "\n\n", "x y."]), max_size=80).map("".join))
def test_spans_are_ordered_trimmed_and_cover_every_character(text):
    spans = sentence_spans(text)
    covered = set()
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        covered.update(range(s, e))
        last = e
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


def test_a_page_text_layer_wraps_long_lines_mid_sentence():
    text = ("For programs in the devscripts package, such as bts(1) and dch(1), export environment variables\n"
            "”$DEBFULLNAME” and ”$DEBEMAIL”. Then run it.\n- a list item\n- another item")
    assert sentences(text) == [
        "For programs in the devscripts package, such as bts(1) and dch(1), export environment variables\n"
        "”$DEBFULLNAME” and ”$DEBEMAIL”.", "Then run it.", "- a list item", "- another item"]


def test_threads_splitting_at_once_get_the_same_sentences():
    """The chat server reads several answers at once: pysbd keeps the text it splits in itself,
    so each thread needs its own (shared, one thread's sentences came out for another's text)."""
    from index.text.sentences import _pysbd

    texts = [f"Talk {i} was given by Dr. {name} at {i} p.m. in room {i}. Questions followed. "
             f"Mr. {name} Jr. closed it." for i, name in enumerate(["Smith", "Okafor", "Lindqvist", "Ng"] * 5)]
    alone = [(_pysbd().segment(t), sentences(t)) for t in texts]
    runs = at_once(lambda: [[(_pysbd().segment(t), sentences(t)) for t in texts] for _ in range(20)])
    assert all(run == [alone] * 20 for run in runs), [r for r in runs if isinstance(r, Exception)]
