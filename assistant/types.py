"""The answer every interface returns: ``Answer`` and its ``Citation``s (data only).

Their JSON form (``Answer.to_dict``) is specified in docs/api.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

ANSWER_VERSION = 4  # the JSON format's version: bump when a field is added, renamed or changes meaning


@dataclass(frozen=True)
class Citation:
    """A passage the answer was given, numbered as the model saw it.

    ``text == extracted_text[start:end]`` of the source document; ``highlights`` are
    (start, end) spans inside ``text`` that support the answer; ``answer_spans`` the exact
    answer inside it (a date, a name), when the answer leads with one; ``score`` is the
    fused retrieval score (see ``assistant.pipeline.retrieval``); ``collection`` the collection
    the document was found in.
    """

    n: int
    cited: bool
    doc_id: str
    chunk_id: str
    source: str
    title: str | None
    page: int | None
    start: int
    end: int
    text: str
    highlights: list[list[int]] = field(default_factory=list)
    score: float = 0.0
    answer_spans: list[list[int]] = field(default_factory=list)
    collection: str | None = None  # the collection the document is in


@dataclass(frozen=True)
class Answer:
    """The one answer format, shared by Python, ``--json``, the UI and the evaluation.

    ``kind`` says what was answered: ``answer`` (a question about the content),
    ``summary``, ``title``, ``author`` or ``date`` (questions about a document), or
    ``none`` (nothing to answer from: abstained, or an empty index). ``lead`` is the short
    answer the quote leads with (the reader's span: "1840", "Adolphe Sax"), or None.
    """

    question: str
    answer: str
    abstained: bool
    mode: str
    backend: str
    citations: list[Citation]
    rewritten_question: str | None = None
    version: int = ANSWER_VERSION
    kind: str = "answer"
    lead: str | None = None

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "question": self.question,
            "rewritten_question": self.rewritten_question,
            "answer": self.answer,
            "abstained": self.abstained,
            "kind": self.kind,
            "lead": self.lead,
            "mode": self.mode,
            "backend": self.backend,
            "citations": [asdict(c) for c in self.citations],
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @property
    def cited(self) -> list[Citation]:
        return [c for c in self.citations if c.cited]
