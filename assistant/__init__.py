"""Answers out: retrieval, answering with checked citations, the CLI and the UI.

Public API: ``ask``, ``Assistant``, ``Settings``, ``Answer``, ``Citation``; the LLM backends
``BundledLLM``, ``server_llm`` and ``make_llm`` (imported on first use: they bring llama-index);
the errors ``AssistantError``, ``LLMError``, ``SettingError``. Where each module sits:
docs/design.md.
"""

import importlib

from assistant.api import Assistant, ask
from assistant.config import Settings
from assistant.errors import AssistantError, LLMError, SettingError
from assistant.types import Answer, Citation

_LAZY = {"BundledLLM": "assistant.llm.bundled", "server_llm": "assistant.llm.server", "make_llm": "assistant.llm"}

__all__ = ["Answer", "Assistant", "AssistantError", "BundledLLM", "Citation", "LLMError", "SettingError", "Settings",
           "ask", "make_llm", "server_llm"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
