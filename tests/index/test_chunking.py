"""Chunker: token sizes, overlap, sentence boundaries, offsets, and the embedder's limit."""

from __future__ import annotations

import pytest

from index.readers import read
from index.text.chunking import chunk_text, count_tokens
from index.text.sentences import sentence_spans
from tests.support import SEEDS


def test_sentences_are_trimmed_spans():
    text = "  First one. Second one!\n\nThird (a quote).\" Fourth?  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", 'Third (a quote)."', "Fourth?"]


def test_chunks_respect_size_and_cover_the_text():
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(300))
    spans = chunk_text(text, max_tokens=60, overlap_tokens=15)
    assert len(spans) > 5
    for span in spans:
        assert span.tokens <= 60
        assert count_tokens([text[span.start:span.end]])[0] <= 60 + 2  # joins between sentences
        assert text[span.start] == "S" and text[span.end - 1] == "."  # whole sentences
    assert spans[0].start == 0 and spans[-1].end == len(text)
    for a, b in zip(spans, spans[1:]):
        assert b.start < a.end, "consecutive chunks overlap"
        assert b.start > a.start


def test_no_overlap_when_zero():
    text = " ".join(f"Line {i} is here." for i in range(100))
    spans = chunk_text(text, max_tokens=40, overlap_tokens=0)
    for a, b in zip(spans, spans[1:]):
        assert b.start >= a.end


def test_long_sentence_without_breaks_is_cut_at_words():
    text = "word " * 5000
    spans = chunk_text(text.strip(), max_tokens=100, overlap_tokens=10)
    assert all(s.tokens <= 100 for s in spans)
    assert spans[-1].end == len(text.strip())


def test_run_without_spaces_is_cut():
    text = "x" * 20000
    spans = chunk_text(text, max_tokens=50, overlap_tokens=0)
    assert "".join(text[s.start:s.end] for s in spans) == text


def test_fits_shrinks_chunks():
    text = " ".join(f"Alpha beta gamma delta {i}." for i in range(50))
    spans = chunk_text(text, max_tokens=200, overlap_tokens=0, fits=lambda t: len(t) <= 100)
    assert all(s.end - s.start <= 100 for s in spans)
    assert spans[-1].end == len(text)


@pytest.mark.slow
def test_no_chunk_exceeds_the_embedders_limit(embedder, corpus):
    """Checked with all-MiniLM-L6-v2's own tokenizer: the model sees every chunk whole."""
    # Russian costs ~1.9 word pieces per tiktoken token: 200 tokens would overflow 254 pieces.
    hard = (
        "Привет, как дела? Это тестовое предложение на русском языке. "
        "Numbers 1234567 and x86_64-linux-gnu 0x7fffdeadbeef. " * 60
    )
    texts = [read(p).text for p in sorted(corpus.iterdir())] + [hard]
    texts.append((SEEDS / "mss-joins-wechat.txt").read_text("utf-8"))
    for text in texts:
        for span in chunk_text(text, 200, 30, fits=embedder.fits):
            assert embedder.count_tokens(text[span.start:span.end]) <= 254
    # and the limit matters: without the check the hard text would overflow
    assert any(embedder.count_tokens(hard[s.start:s.end]) > 254 for s in chunk_text(hard, 200, 30))


def test_chunks_never_cross_a_page_break():
    pages = [" ".join(f"Page {p} sentence {i}." for i in range(30)) for p in range(3)]
    text = "\n\n".join(pages)
    starts = [0, len(pages[0]) + 2, len(pages[0]) + len(pages[1]) + 4]
    spans = chunk_text(text, max_tokens=50, overlap_tokens=20, breaks=starts)
    for span in spans:
        inside = [b for b in starts if span.start < b < span.end]
        assert not inside, "a chunk crosses a page start"
    assert {s.start for s in spans} >= set(starts)


def test_streamed_chunks_match_whole_text_chunks():
    from index.text.chunking import chunk_stream

    text = (SEEDS / "mss-joins-wechat.txt").read_text("utf-8") * 12 + "\n\nA last short line."
    whole = [(s.start, s.end) for s in chunk_text(text, 200, 30)]
    blocks = [text[i:i + 3000] for i in range(0, len(text), 3000)]
    streamed = list(chunk_stream(blocks, 200, 30, window=8000))
    assert [(s.start, s.end) for s, _ in streamed] == whole
    assert all(text[s.start:s.end] == t for s, t in streamed)
