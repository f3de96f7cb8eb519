"""The reader without its model: windows, span decoding, the no-answer decision, the weights file."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.errors import ReaderError
from assistant.pipeline import read_evidence
from assistant.pipeline.evidence import ANSWER_THRESHOLD, Evidence, Sentence
from assistant.pipeline.question import analyse
from assistant.pipeline.reader import Reading, load_weights, whole_words
from assistant.pipeline.reading import (CLS, MAX_LENGTH, QUESTION_TOKENS, SEP, around, answer_tokens, best_span,
                                        room_for, spans_of, window)
from assistant.training import export


def test_windows_cover_a_passage_and_overlap():
    ranges = spans_of(230, 100, 40)
    assert ranges[0] == (0, 100) and ranges[-1][1] == 230
    assert all(b - a == 100 for a, b in ranges)
    assert all(ranges[i + 1][0] < ranges[i][1] for i in range(len(ranges) - 1))  # neighbours overlap
    assert spans_of(50, 100) == [(0, 50)]
    with pytest.raises(ValueError):
        spans_of(300, 40, 40)


def test_a_window_is_question_then_passage_with_the_answer_labelled():
    question, passage = [7, 8, 9], list(range(1000, 1020))
    w = window(question, passage, 5, 15, answer=(8, 9))
    assert w.ids[:5] == (CLS, 7, 8, 9, SEP) and w.ids[-1] == SEP
    assert w.type_ids == (0,) * 5 + (1,) * 11
    assert w.ids[w.start] == 1008 and w.ids[w.end] == 1009
    outside = window(question, passage, 10, 20, answer=(8, 9))  # the answer is not in this window
    assert (outside.start, outside.end) == (0, 0)


def test_a_long_question_is_cut_not_refused():
    question = list(range(2000, 2000 + 3 * QUESTION_TOKENS))
    w = window(question, list(range(50)), 0, room_for(question))
    assert len(w.ids) <= MAX_LENGTH and w.ids[QUESTION_TOKENS + 1] == SEP


def test_character_offsets_become_token_spans():
    offsets = [(0, 3), (4, 9), (10, 12), (12, 15), (16, 20)]
    assert answer_tokens(offsets, 4, 15) == (1, 3)
    assert answer_tokens(offsets, 11, 13) == (2, 3)  # a part of a word takes the whole word piece
    assert answer_tokens(offsets, 20, 25) is None
    lo, hi = around(offsets, 10, 15, room=3)
    assert lo <= 2 and 3 < hi and hi - lo == 3


def test_the_best_span_is_found_and_kept_short():
    w = window([5], list(range(100, 110)), 0, 10)  # passage tokens at 3..12
    start, end = np.full(len(w.ids), -5.0), np.full(len(w.ids), -5.0)
    start[0] = end[0] = 0.0  # "no answer" scores 0
    start[5], end[7] = 4.0, 3.0  # passage tokens 2..4
    found = best_span(start, end, w)
    assert (found.lo, found.hi) == (2, 4) and found.margin == pytest.approx(7.0)
    end[7], end[12] = -5.0, 3.5  # the best end is too far from the start for max_tokens=3
    short = best_span(start, end, w, max_tokens=3)
    assert short.hi - short.lo < 3
    inside = best_span(start, end, w, within=(5, 8))  # one sentence: passage tokens 5..7
    assert 5 <= inside.lo <= inside.hi <= 7
    assert best_span(start, end, w, within=(20, 30)) is None  # a sentence this window does not hold


def test_the_no_answer_score_wins_when_nothing_beats_it():
    w = window([5], list(range(100, 110)), 0, 10)
    start, end = np.full(len(w.ids), -2.0), np.full(len(w.ids), -2.0)
    start[0] = end[0] = 6.0
    assert best_span(start, end, w).margin < 0


TEXTS = ["The tower was built in 1898. It is 41 metres tall in all."]
FIRST, SECOND = "The tower was built in 1898.", "It is 41 metres tall in all."


class Reads:
    """What ``reader.Reads`` answers, from readings given by hand (plumbing only: no model)."""

    def __init__(self, *readings):
        self.readings = list(readings)

    def __bool__(self):
        return bool(self.readings)

    def best(self):
        return sorted(self.readings, key=lambda r: -r.margin)

    def within(self, passage, start, end):
        inside = [r for r in self.readings if r.passage == passage and start <= r.start < end]
        return max(inside, key=lambda r: r.margin) if inside else None


def _evidence(question="How tall is the tower?", confidence=0.9):
    at = TEXTS[0].find(SECOND)
    sentences = [Sentence(0, 0, len(FIRST), FIRST, 0.9), Sentence(0, at, at + len(SECOND), SECOND, 0.5)]
    return Evidence(analyse(question), sentences, confidence)


def _reading(text, margin):
    at = TEXTS[0].find(text)
    return Reading(0, at, at + len(text), text, margin=margin, score=margin + 1.0)


def test_the_readers_margin_reranks_the_sentences_and_its_span_leads():
    ev = read_evidence.read_into(_evidence(), TEXTS, Reads(_reading("41 metres", 8.0)))
    best = ev.sentences[0]
    assert best.text == SECOND and best.text[best.span[0]:best.span[1]] == "41 metres"
    assert read_evidence.reader_lead(ev) == "41 metres"
    assert ev.sentences[1].span is None  # no other sentence keeps a span the reader did not find


def test_a_span_the_reader_does_not_support_never_leads():
    weak = read_evidence.read_into(_evidence(), TEXTS, Reads(_reading("41 metres", read_evidence.LEAD_MARGIN - 1)))
    assert read_evidence.reader_lead(weak) is None
    unread = read_evidence.read_into(_evidence(), TEXTS, Reads())
    assert unread.read and read_evidence.reader_lead(unread) is None
    assert [s.text for s in unread.sentences] == [FIRST, SECOND]  # the rules' order stands


def test_a_sure_reader_answers_where_the_rules_doubt_and_never_against_a_veto():
    doubt = ANSWER_THRESHOLD / 3
    assert read_evidence.combined(doubt, read_evidence.ANSWER_MARGIN + 1) >= ANSWER_THRESHOLD
    assert read_evidence.combined(doubt, read_evidence.ANSWER_MARGIN - 1) == doubt
    assert read_evidence.combined(0.0, 50.0) == 0.0  # owned_by_others: the rules rule it out


def test_the_reader_ranks_only_what_the_rules_would_quote():
    text = "How tall is the tower\n\n$ sudo apt-get install tower-tools\n\nThe tower is 41 metres tall."
    at = text.find("The tower is")
    ev = Evidence(analyse("How tall is the tower?"), [Sentence(0, at, len(text), text[at:], 0.9)], 0.9)
    for wrong in ("How tall is the tower", "sudo apt-get install tower-tools"):  # a heading, a command
        w = text.find(wrong)
        read = read_evidence.read_into(ev, [text], Reads(Reading(0, w, w + len(wrong), wrong, 9.0, 10.0)))
        assert [s.text for s in read.sentences] == [text[at:]] and read_evidence.reader_lead(read) is None


def test_a_how_many_answer_must_hold_a_number():
    ev = _evidence("How many lamps does the tower have?")
    read = read_evidence.read_into(ev, TEXTS, Reads(_reading("metres tall", 8.0)))
    assert read_evidence.reader_lead(read) is None


def test_a_span_to_the_sentence_end_leads_without_its_full_stop():
    ev = read_evidence.read_into(_evidence(), TEXTS, Reads(_reading("1898.", 5.0)))
    assert read_evidence.reader_lead(ev) == "1898"


def test_weights_survive_the_int8_file():
    rng = np.random.default_rng(0)
    weights = {"layer.0.intermediate.dense.weight": rng.normal(size=(8, 16)).astype(np.float32),
               "word_embeddings": rng.normal(size=(20, 8)).astype(np.float32),
               "layer.0.output.LayerNorm.weight": np.ones(8, np.float32),
               "span.weight": rng.normal(size=(8, 2)).astype(np.float32)}
    stored = export.quantise(weights)
    assert stored["q:word_embeddings"].dtype == np.int8 and stored["f:span.weight"].dtype == np.float32
    back = stored["q:layer.0.intermediate.dense.weight"] * stored["s:layer.0.intermediate.dense.weight"]
    assert np.abs(back - weights["layer.0.intermediate.dense.weight"]).max() < 0.05


def test_a_missing_or_damaged_weights_file_names_the_file_and_the_fix(tmp_path):
    missing = tmp_path / "reader.npz"
    with pytest.raises(ReaderError, match="reader.npz.*(git checkout|assistant.training.train)"):
        load_weights(missing)
    missing.write_bytes(b"not a zip")
    with pytest.raises(ReaderError, match="cannot be read"):
        load_weights(missing)
    np.savez(missing, **{"f:span.bias": np.zeros(2, np.float32)})
    with pytest.raises(ReaderError, match="not the reader's weights"):
        load_weights(missing)


def test_a_span_is_widened_to_whole_words():
    text = "The ministry joined WeChat on Monday."
    at = text.find("Chat")
    assert text[slice(*whole_words(text, at, at + 4))] == "WeChat"
    at = text.find("Mon")
    assert text[slice(*whole_words(text, at, at + 3))] == "Monday"
    assert text[slice(*whole_words(text, 0, 3))] == "The"


def test_a_span_of_the_questions_own_words_does_not_lead():
    ev = read_evidence.read_into(_evidence("When was the tower built?"), TEXTS, Reads(_reading("The tower", 6.0)))
    assert read_evidence.reader_lead(ev) is None
    chosen = read_evidence.read_into(_evidence("Was the tower built in 1898 or 1899?"), TEXTS,
                                     Reads(_reading("1898", 6.0)))
    assert read_evidence.reader_lead(chosen) == "1898"  # a choice the question offers may lead
