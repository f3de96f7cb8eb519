"""The reader's weights file: int8 matrices with a float32 scale each, float32 vectors; no torch here.

The file is a compressed numpy archive named by the roles ``index.embedding.onnx_graph`` reads
(``layer.0.attention.self.query.weight`` laid out for ``x @ W``, ...) plus ``span.weight``
(384 x 2) and ``span.bias``. A matrix ``m`` is stored as ``q:m`` (int8) and ``s:m`` (float32, one
scale per output column, or per row for the embedding tables); a vector as ``f:m``. The reader
multiplies them back to float32 and computes in float32 (docs/reader.md).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROW_SCALED = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def from_state_dict(state: dict, head_weight, head_bias) -> dict:
    """float32 numpy weights by role from a Hugging Face ``BertModel`` state dict and the span
    head (``nn.Linear(384, 2)``'s weight and bias)."""
    import numpy as np

    def arr(t):
        return t.detach().cpu().float().numpy() if hasattr(t, "detach") else np.asarray(t, np.float32)

    out = {}
    for name, tensor in state.items():
        if name.endswith("position_ids"):
            continue
        key = name.removeprefix("embeddings.").removeprefix("encoder.")
        if key.endswith("_embeddings.weight"):
            key = key.removesuffix(".weight")
        value = arr(tensor)
        if value.ndim == 2 and not key.endswith("_embeddings"):
            value = value.T  # nn.Linear keeps (out, in); the graph multiplies x @ W
        if key.startswith("LayerNorm."):
            key = "embeddings." + key
        if key.startswith("pooler."):
            continue
        out[key] = np.ascontiguousarray(value, dtype=np.float32)
    out["span.weight"] = np.ascontiguousarray(arr(head_weight).T)
    out["span.bias"] = arr(head_bias)
    return out


def quantise(weights: dict) -> dict:
    """The arrays of the file for float32 ``weights``: symmetric int8 per output column."""
    import numpy as np

    out = {}
    for name, w in weights.items():
        if w.ndim == 1 or name == "span.weight":
            out[f"f:{name}"] = w.astype(np.float32)
            continue
        axis = 1 if name in ROW_SCALED else 0
        scale = np.abs(w).max(axis=axis, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        out[f"q:{name}"] = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        out[f"s:{name}"] = scale.astype(np.float32)
    return out


def write(weights: dict, path: Path) -> None:
    """Write the weights file at ``path``, whole or not at all."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
        np.savez_compressed(f, **quantise(weights))
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)
