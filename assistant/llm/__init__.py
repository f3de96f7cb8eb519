"""The LLM backends: the bundled SmolLM2 (``bundled``), any OpenAI-compatible server
(``server``), and talking to any llama-index LLM (``base``). ``make_llm`` picks one from the
settings and imports llama-index only then."""

from __future__ import annotations

from assistant.errors import LLMError


def make_llm(settings):
    """The LLM the settings ask for, as a llama-index ``LLM`` (None for backend ``none``)."""
    if settings.backend == "none":
        return None
    try:
        if settings.backend == "openai":
            from assistant.llm.server import server_llm

            return server_llm(settings.llm_url, settings.llm_model, settings.llm_api_key,
                              context_window=settings.llm_context, max_tokens=settings.max_answer_tokens)
        from assistant.llm.bundled import BundledLLM
    except ImportError as exc:  # llama-index or its OpenAI-compatible client is missing
        raise LLMError(f"cannot load the LLM backends ({exc}); run the install command") from exc
    return BundledLLM(threads=settings.threads, max_tokens=settings.max_answer_tokens)
