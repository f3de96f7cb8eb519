"""Every error the assistant raises, under one base class, and the index's errors beside them.

Catch ``AssistantError`` for what ``assistant/`` raises, or ``USER_ERRORS`` for everything that
carries a message a user can act on (the CLI prints it on one line).
"""

from __future__ import annotations

from index.errors import (CatalogUnavailable, CatalogVersionMismatch, CollectionError, EmbedderError, IndexBusy, IndexingError, IndexProblem, IndexWriteFailed, ReadError,
                          RemovalRefused, SettingsMismatch, StoreUnavailable)

__all__ = ["USER_ERRORS", "AssistantError", "CatalogUnavailable", "CatalogVersionMismatch", "CollectionError", "ConversationNotFound", "EmbedderError", "IndexBusy", "IndexProblem", "IndexWriteFailed",
           "IndexingError", "LLMError", "ReadError", "ReaderError", "RemovalRefused", "SettingError", "SettingsMismatch",
           "StoreUnavailable"]


class AssistantError(Exception):
    """Base of everything ``assistant/`` raises on purpose."""


class LLMError(AssistantError, RuntimeError):
    """The LLM cannot be loaded or reached; the message says what to do."""


class SettingError(AssistantError, ValueError):
    """A setting with a bad value; ``name`` is the setting (a ``Settings`` field)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


USER_ERRORS = (AssistantError, IndexingError)


class ReaderError(AssistantError, RuntimeError):
    """The reader's weights are missing or damaged; the message names the file and the fix."""


class ConversationNotFound(AssistantError, ValueError):
    """No stored conversation has that id (for this user)."""
