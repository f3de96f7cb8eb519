"""The bundled SmolLM2 as a llama-index ``CustomLLM``.

Importing this module imports llama-index; ``assistant.llm.make_llm`` does it only when an
answer needs a model.

    >>> from assistant import BundledLLM
    >>> llm = BundledLLM()                      # a llama-index CustomLLM
    >>> llm.complete("Say hello.").text
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms import (ChatMessage, ChatResponse, ChatResponseGen, CompletionResponse,
                                   CompletionResponseGen, CustomLLM, LLMMetadata, MessageRole)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from assistant.errors import LLMError
from assistant.llm.gguf import load_llama, lock_for, prepared_model_path
from assistant.llm.base import DEFAULT_MAX_TOKENS

_BUFFER = 16  # generated pieces held for a slow reader before generation waits for it
ABANDON_AFTER = 30.0  # seconds a stream may go unread before its generation stops and frees the model


class BundledLLM(CustomLLM):
    """SmolLM2-135M-Instruct through llama-cpp-python, loaded once per process (as Q8_0,
    see ``assistant.llm.gguf.prepared_model_path``), as a llama-index ``CustomLLM``.

    A chat model: ``chat``/``stream_chat`` apply the model's own chat template; ``complete``
    sends the prompt as one user message. Greedy decoding (temperature 0).

    One llama.cpp context serves one generation at a time, so streams take turns.
    A stream holds the model only while it is read: when its reader closes it, or
    asks for no piece for ``abandon_after`` seconds (a browser tab that went away),
    its generation stops and the next stream gets the model.

    Args:
        threads: CPU threads (0: all cores).
        path: the GGUF file (default: the bundled model, prepared as Q8_0).
        abandon_after: seconds a stream may go unread before its generation stops.
        max_tokens: tokens per answer unless a call passes ``max_tokens``.
    """

    path: Path = Field(default_factory=prepared_model_path, description="the GGUF model file")
    threads: int = Field(default=0, description="CPU threads (0: all cores)")
    abandon_after: float = Field(default=ABANDON_AFTER, description="seconds a stream may go unread")
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, description="tokens per answer")
    _llama: Any = PrivateAttr()
    _lock: Any = PrivateAttr()

    def __init__(self, **data: Any):
        super().__init__(**data)
        self._llama = load_llama(str(self.path), self.threads)
        self._lock = lock_for(str(self.path))

    @classmethod
    def class_name(cls) -> str:
        return "BundledLLM"

    @property
    def name(self) -> str:
        """How answers name this backend (``Answer.backend``)."""
        return f"bundled:{self.path.stem}"

    @property
    def context_window(self) -> int:
        """Tokens of prompt and answer together."""
        return int(self._llama.n_ctx())

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.max_tokens,
                           is_chat_model=True, model_name=self.path.stem)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer (the prompt budget uses it)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def forget_prompt(self) -> None:
        """Forget the last prompt, so the next one is read whole (no cached prefix is reused)."""
        with self._lock:
            self._llama.reset()

    # llama-index's interface ------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text = "".join(self._pieces(_as_dicts(messages), kwargs.get("max_tokens") or self.max_tokens))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        pieces = self._pieces(_as_dicts(messages), kwargs.get("max_tokens") or self.max_tokens)

        def gen() -> ChatResponseGen:
            text = ""
            try:
                for piece in pieces:
                    text += piece
                    yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                                       delta=piece)
            finally:
                pieces.close()  # a reader that stops frees the model at once

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = "".join(self._pieces([{"role": "user", "content": prompt}],
                                    kwargs.get("max_tokens") or self.max_tokens))
        return CompletionResponse(text=text)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        pieces = self._pieces([{"role": "user", "content": prompt}], kwargs.get("max_tokens") or self.max_tokens)

        def gen() -> CompletionResponseGen:
            text = ""
            try:
                for piece in pieces:
                    text += piece
                    yield CompletionResponse(text=text, delta=piece)
            finally:
                pieces.close()

        return gen()

    def stream(self, prompt, *args, **kwargs):
        """llama-index's ``stream(prompt_template, **args)``; or, given a list of role/content
        dicts and a token limit (``stream(messages, max_tokens)``), the text pieces for them."""
        if isinstance(prompt, list):
            return self._pieces(prompt, *args, **kwargs)
        return super().stream(prompt, *args, **kwargs)

    # generation -----------------------------------------------------------------------
    def _pieces(self, messages: list[dict], max_tokens: int) -> Iterator[str]:
        """Text pieces of the model's answer to ``messages``, generated in a thread that stops
        when this generator is closed or goes unread for ``abandon_after`` seconds."""
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


def _as_dicts(messages: Sequence[ChatMessage]) -> list[dict]:
    """llama-index chat messages as the role/content dicts llama.cpp takes."""
    return [{"role": m.role.value, "content": m.content or ""} for m in messages]
