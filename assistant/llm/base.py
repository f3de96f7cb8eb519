"""Talking to any LLM: stream its answer, name it, read its window and token count.

An LLM is any llama-index ``LLM`` (``BundledLLM``, ``OpenAILike``, ``Ollama``, your own
``CustomLLM``), or a plain object with ``stream(messages, max_tokens)`` yielding text pieces.
Messages are ``[{"role": "system"|"user"|"assistant", "content": str}]``. Nothing here
imports llama-index at import time.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterator

from assistant.errors import LLMError
from index.embedding.embedder import estimate_tokens

DEFAULT_CONTEXT = 8192  # window assumed for a model that does not declare its own
DEFAULT_MAX_TOKENS = 160  # tokens per answer when a call does not say (Settings.max_answer_tokens)


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
        raise llm_error(llm, exc) from exc
    finally:
        if responses is not None and hasattr(responses, "close"):
            responses.close()


def llm_error(llm, exc: Exception) -> LLMError:
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
            raise llm_error(llm, exc) from exc
    else:
        window = getattr(llm, "context_window", None)
    return int(window) if window and window > 0 else DEFAULT_CONTEXT


def token_counter(llm) -> Callable[[str], int]:
    """The model's own token count when it has one (``count_tokens``), else ``estimate_tokens``."""
    count = getattr(llm, "count_tokens", None)
    return count if callable(count) else estimate_tokens
