"""Answers out: retrieval, answering with checked citations, the CLI and the UI.

Public API: ``ask``, ``Assistant``, ``Settings``, ``Answer``, ``Citation``.
"""

from assistant.answer import Answer, Citation
from assistant.api import Assistant, ask
from assistant.config import Settings

__all__ = ["Answer", "Assistant", "Citation", "Settings", "ask"]
