"""Any OpenAI-compatible server (Ollama, vLLM, llama.cpp's server) as a llama-index LLM."""

from __future__ import annotations

from assistant.llm.base import DEFAULT_CONTEXT, DEFAULT_MAX_TOKENS

SERVER_RETRIES = 2  # tries again after a failed request to an OpenAI-compatible server
SERVER_TIMEOUT = 120.0  # seconds to wait for that server's answer


def server_llm(url: str, model: str = "default", api_key: str | None = None,
               context_window: int = DEFAULT_CONTEXT, max_tokens: int = DEFAULT_MAX_TOKENS,
               timeout: float = SERVER_TIMEOUT):
    """llama-index's ``OpenAILike`` for a server speaking OpenAI's chat API (Ollama, vLLM,
    llama.cpp's server), at temperature 0, with retries and a timeout.

    Args:
        url: the base URL, e.g. ``http://127.0.0.1:11434/v1``.
        model: the model name to ask for.
        api_key: sent as a bearer token when given (never ``OPENAI_API_KEY``: the server is yours).
        context_window: the served model's window in tokens; the prompt is budgeted to it.
        max_tokens: tokens per answer.
        timeout: seconds to wait for the server.
    """
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(model=model, api_base=url.rstrip("/"), api_key=api_key or "none",
                      context_window=context_window, max_tokens=max_tokens, temperature=0.0,
                      is_chat_model=True, timeout=timeout, max_retries=SERVER_RETRIES)
