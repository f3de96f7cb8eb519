"""The reader: a small extractive question-answering model that marks the answer in a passage.

all-MiniLM-L6-v2 fine-tuned with a span head on crowd-written questions (``assistant.training``;
model card: docs/reader.md). Its weights ship in ``assistant/models/reader/`` as int8 with a scale
each; they are multiplied back to float32 and laid into the same fused ONNX graph as the embedder
(``index.embedding.onnx_graph``), so it runs on ONNX Runtime in float32, without torch, and
scores alike on every CPU. How it sees its input and how scores become spans: ``reading``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ReaderError
from assistant.pipeline.reading import Window, answer_tokens, around, best_span, room_for, window

WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "reader" / "reader.npz"
MAX_WINDOWS = 8  # windows read for one question: caps the time an answer takes
FIX = ("restore it from the repository (git checkout -- {path}) or train one: "
       "python -m assistant.training.train (docs/reader.md)")


@dataclass(frozen=True)
class Reading:
    """A span the reader found (the best of a window, or of a sentence): characters [start, end)
    of ``passages[passage]``, and ``margin``, how far it beats "no answer" there (above 0: the
    reader would answer with it)."""

    passage: int
    start: int
    end: int
    text: str
    margin: float
    score: float


def load_weights(path: Path = WEIGHTS) -> dict:
    """The reader's float32 weights by role, from its int8 file at ``path``.

    Raises:
        ReaderError: the file is missing, unreadable or not a reader's weights; the message
            names the file and the fix.
    """
    import zipfile
    import zlib

    import numpy as np

    from index.embedding.onnx_graph import expected_names

    fix = FIX.format(path=path)
    if not Path(path).is_file():
        raise ReaderError(f"the reader's weights {path} are missing; {fix}")
    try:
        with np.load(path) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ReaderError(f"the reader's weights {path} cannot be read ({exc}); {fix}") from exc
    weights = {}
    for key, array in arrays.items():
        kind, _, name = key.partition(":")
        if kind == "f":
            weights[name] = array.astype(np.float32)
        elif kind == "q" and f"s:{name}" in arrays:
            weights[name] = (array.astype(np.float32) * arrays[f"s:{name}"]).astype(np.float32)
    missing = [k for k in expected_names() + ["span.weight", "span.bias"] if k not in weights]
    if missing:
        raise ReaderError(f"{path} is not the reader's weights (no {', '.join(missing[:3])}); {fix}")
    return weights


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole words: a span never starts or ends inside a word ("Chat" of
    "WeChat" is "WeChat")."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return start, end


class Reader:
    """Reads passages against a question; loads its model on first use, thread-safe.

    Args:
        path: the weights file (default: the shipped one).
        threads: ONNX Runtime's threads (0: all cores).
    """

    def __init__(self, path: Path = WEIGHTS, threads: int = 0):
        self.path = Path(path)
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()

    def session(self):
        """The ONNX Runtime session, built from the weights on first call."""
        with self._lock:
            if self._session is None:
                self._session = self._build()
            return self._session

    def _build(self):
        import onnxruntime as ort

        from index.embedding.onnx_graph import build_model

        model = build_model(load_weights(self.path), head="span")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def score(self, windows: list[Window]):
        """Start and end logits of ``windows``, (n, longest, 2), padded windows masked."""
        import numpy as np

        width = max(len(w.ids) for w in windows)
        ids = np.zeros((len(windows), width), np.int64)
        types, mask = np.zeros_like(ids), np.zeros_like(ids)
        for r, w in enumerate(windows):
            ids[r, :len(w.ids)], types[r, :len(w.ids)], mask[r, :len(w.ids)] = w.ids, w.type_ids, 1
        return self.session().run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]

    def read(self, question: str, passages: list[str], focus: list[tuple[int, int, int]],
             max_windows: int = MAX_WINDOWS) -> "Reads":
        """Read windows of ``passages`` against ``question``.

        Args:
            question: the question (cut to the reader's window when longer).
            passages: the candidate passages' texts.
            focus: (passage, start, end) character ranges to read, most promising first: each
                is read in a window with it in the middle, unless an earlier window holds it.
            max_windows: at most this many windows are read (the time an answer takes).
        """
        from index.embedding.embedder import TOKENIZER, word_piece_tokenizer

        tok = word_piece_tokenizer(str(TOKENIZER), None)
        q_ids = tok.encode(question, add_special_tokens=False).ids
        encoded: dict[int, object] = {}
        plan: list[tuple[int, Window]] = []
        for n, start, end in focus:
            if len(plan) >= max_windows:
                break
            if n not in encoded:
                encoded[n] = tok.encode(passages[n], add_special_tokens=False)
            e = encoded[n]
            held = answer_tokens(e.offsets, start, end)
            if held is None or any(m == n and w.lo <= held[0] and held[1] < w.hi for m, w in plan):
                continue
            lo, hi = around(e.offsets, start, end, room_for(q_ids))
            plan.append((n, window(q_ids, e.ids, lo, hi)))
        logits = self.score([w for _, w in plan]) if plan else []
        return Reads(passages, {n: e.offsets for n, e in encoded.items()},
                     [(n, w, row) for (n, w), row in zip(plan, logits)])


class Reads:
    """The windows one question's reading read, and the spans they score.

    ``best()`` is each window's best span; ``within(passage, start, end)`` the best span inside
    those characters (a sentence) over the windows that hold any of it.
    """

    def __init__(self, passages: list[str], offsets: dict[int, list], windows: list[tuple]):
        self.passages = passages
        self.offsets = offsets
        self.windows = windows

    def __bool__(self) -> bool:
        return bool(self.windows)

    def best(self) -> list[Reading]:
        """Each window's best span, best first."""
        out = [self._reading(n, best_span(row[:, 0], row[:, 1], w)) for n, w, row in self.windows]
        return sorted(out, key=lambda r: (-r.margin, r.passage, r.start))

    def within(self, passage: int, start: int, end: int) -> Reading | None:
        """The best span inside characters [start, end) of ``passage``; None when no window read them."""
        tokens = answer_tokens(self.offsets.get(passage, []), start, end)
        if tokens is None:
            return None
        found = [best_span(row[:, 0], row[:, 1], w, within=(tokens[0], tokens[1] + 1))
                 for n, w, row in self.windows if n == passage]
        found = [f for f in found if f is not None]
        return self._reading(passage, max(found, key=lambda f: f.margin)) if found else None

    def _reading(self, n: int, found) -> Reading:
        offsets = self.offsets[n]
        start, end = whole_words(self.passages[n], offsets[found.lo][0], offsets[found.hi][1])
        return Reading(n, start, end, self.passages[n][start:end], found.margin, found.score)


_SHARED: dict[int, Reader] = {}
_SHARED_LOCK = threading.Lock()


def shared_reader(threads: int = 0) -> Reader:
    """One reader of the shipped weights per thread count, shared by every assistant of the
    process (its model loads once)."""
    with _SHARED_LOCK:
        if threads not in _SHARED:
            _SHARED[threads] = Reader(WEIGHTS, threads)
        return _SHARED[threads]
