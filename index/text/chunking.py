"""Text to token-sized, sentence-aware chunks with character offsets. Pure: no I/O.

Sizes are counted in tiktoken tokens. An optional ``fits`` check (the embedder's
own tokenizer) shrinks any chunk the embedding model would truncate, so the model
always sees all of every chunk.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from index.text.sentences import sentence_spans

ENCODING = "cl100k_base"
# Bump whenever chunk_text would cut the same text differently: the index records it, and an
# index cut by another version is refused until it is rebuilt.
CHUNKER_VERSION = 3

_WORD = re.compile(r"\S+\s*")
_MAX_WORD_CHARS = 64


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk: ``text[start:end]`` of the document, and its size in tokens."""

    start: int
    end: int
    tokens: int


@functools.lru_cache(maxsize=1)
def encoding():
    """The tiktoken encoding, loaded from the cache llama-index ships (no download)."""
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        import importlib.util

        spec = importlib.util.find_spec("llama_index.core")
        if spec and spec.submodule_search_locations:
            cache = os.path.join(spec.submodule_search_locations[0], "_static", "tiktoken_cache")
            if os.path.isdir(cache):
                os.environ["TIKTOKEN_CACHE_DIR"] = cache
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(texts: list[str]) -> list[int]:
    """tiktoken token counts of several texts at once."""
    return [len(t) for t in encoding().encode_ordinary_batch(texts)]


def _word_pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split a span into words (long runs without spaces cut every 64 characters)."""
    pieces = []
    for match in _WORD.finditer(text, start, end):
        s, e = match.start(), match.end()
        while e - s > _MAX_WORD_CHARS:
            pieces.append((s, s + _MAX_WORD_CHARS))
            s += _MAX_WORD_CHARS
        pieces.append((s, e))
    return pieces


def _units(text: str, max_tokens: int) -> list[tuple[int, int, int]]:
    """Sentences as (start, end, tokens); sentences over ``max_tokens`` are cut at words."""
    sentences = sentence_spans(text)
    counts = count_tokens([text[s:e] for s, e in sentences])
    units: list[tuple[int, int, int]] = []
    for (s, e), n in zip(sentences, counts):
        if n <= max_tokens:
            units.append((s, e, n))
            continue
        words = _word_pieces(text, s, e)
        word_counts = count_tokens([text[a:b] for a, b in words])
        words, word_counts = _shrink(text, words, word_counts, max_tokens)
        cur_start, cur_tokens = words[0][0], 0
        for (a, b), wn in zip(words, word_counts):
            if cur_tokens and cur_tokens + wn > max_tokens:
                units.append(_trimmed_unit(text, cur_start, a, cur_tokens))
                cur_start, cur_tokens = a, 0
            cur_tokens += wn
        units.append(_trimmed_unit(text, cur_start, e, cur_tokens))
    return [u for u in units if u[1] > u[0]]


def _shrink(text: str, pieces: list[tuple[int, int]], counts: list[int], max_tokens: int):
    """Halve any piece over ``max_tokens`` (a run of characters that cost several tokens each)."""
    out_pieces, out_counts = [], []
    stack = list(zip(pieces, counts))[::-1]
    while stack:
        (a, b), n = stack.pop()
        if n <= max_tokens or b - a < 2:
            out_pieces.append((a, b))
            out_counts.append(n)
            continue
        mid = a + (b - a) // 2
        left, right = count_tokens([text[a:mid], text[mid:b]])
        stack += [((mid, b), right), ((a, mid), left)]
    return out_pieces, out_counts


def _trimmed_unit(text: str, start: int, end: int, tokens: int) -> tuple[int, int, int]:
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end, tokens)


def chunk_text(
    text: str,
    max_tokens: int = 200,
    overlap_tokens: int = 30,
    fits: Callable[[str], bool] | None = None,
    breaks: Sequence[int] = (),
) -> list[ChunkSpan]:
    """Pack sentences into chunks of at most ``max_tokens`` tiktoken tokens.

    Args:
        text: the document's extracted text.
        max_tokens: the most tiktoken tokens in one chunk.
        overlap_tokens: up to this many tokens of whole sentences repeat at the start
            of the next chunk.
        fits: optional check that the embedding model sees a chunk whole; a chunk
            failing it is shrunk until it passes.
        breaks: offsets no chunk may cross (page starts), with no overlap across them.

    Returns:
        Spans in document order; ``text[span.start:span.end]`` is each chunk's text.
    """
    units = _units(text, max_tokens)
    breaks = sorted(breaks)
    spans: list[ChunkSpan] = []
    i = 0
    while i < len(units):
        limit = next((b for b in breaks if b > units[i][0]), len(text) + 1)
        j, total = i, 0
        while j < len(units) and total + units[j][2] <= max_tokens and units[j][0] < limit:
            total += units[j][2]
            j += 1
        j = max(j, i + 1)
        while fits is not None and not fits(text[units[i][0] : units[j - 1][1]]):
            if j - 1 > i:
                j -= 1
            else:
                halves = _split_unit(text, units[i])
                if halves is None:
                    break
                units[i : i + 1] = halves
                j = i + 1
        total = sum(u[2] for u in units[i:j])
        spans.append(ChunkSpan(units[i][0], units[j - 1][1], total))
        if j >= len(units):
            break
        if units[j][0] >= limit:  # a page starts here: no overlap across it
            i = j
            continue
        # Start the next chunk with trailing sentences of this one, up to the overlap.
        back, carried = j, 0
        while back - 1 > i and carried + units[back - 1][2] <= overlap_tokens:
            back -= 1
            carried += units[back][2]
        i = back
    return spans


def chunk_stream(
    blocks: Iterable[str],
    max_tokens: int = 200,
    overlap_tokens: int = 30,
    fits: Callable[[str], bool] | None = None,
    window: int = 1 << 17,
) -> Iterator[tuple[ChunkSpan, str]]:
    """Chunk a text given in blocks, holding about ``window`` characters at a time.

    Chunks ``chunk_text`` over a sliding buffer: all but the last two chunks of a
    buffer are final; the next buffer starts where the second-to-last began (its
    overlap included), so the chunks match chunking the whole text, seams aside.

    Yields:
        (span, chunk text) in document order; span offsets count from the text's start.
    """
    source = iter(blocks)
    buf, base, done = "", 0, False
    while True:
        while not done and len(buf) < window:
            block = next(source, None)
            if block is None:
                done = True
            else:
                buf += block
        spans = chunk_text(buf, max_tokens, overlap_tokens, fits)
        if done:
            for span in spans:
                yield ChunkSpan(base + span.start, base + span.end, span.tokens), buf[span.start : span.end]
            return
        if len(spans) < 3:  # not enough sentences yet to know where to cut
            window *= 2
            continue
        for span in spans[:-2]:
            yield ChunkSpan(base + span.start, base + span.end, span.tokens), buf[span.start : span.end]
        cut = spans[-2].start
        buf, base = buf[cut:], base + cut


def _split_unit(text: str, unit: tuple[int, int, int]) -> list[tuple[int, int, int]] | None:
    """Cut one unit in two at a word boundary (or mid-word if it has one word)."""
    start, end, _ = unit
    words = _word_pieces(text, start, end)
    if len(words) >= 2:
        cut = words[len(words) // 2][0]
    elif end - start >= 2:
        cut = start + (end - start) // 2
    else:
        return None
    left = _trimmed_unit(text, start, cut, 0)
    counts = count_tokens([text[left[0] : left[1]], text[cut:end]])
    return [(left[0], left[1], counts[0]), (cut, end, counts[1])]
