"""The assistant's answers as llama-index components: a retriever, a query engine, a chat engine.

Made by ``Assistant.as_retriever``, ``as_query_engine`` and ``as_chat_engine``, they run the
assistant's own answer path (``Assistant.stream``) and speak llama-index's types outward: the
retriever's nodes are the passages ``ask`` shows, in its order; an engine's response text is the
checked ``Answer.answer``, its ``source_nodes`` the citations in order (``[n]`` is
``source_nodes[n-1]``), its ``metadata`` the whole ``Answer.to_dict()`` (docs/llama-index.md).
Importing this module imports llama-index.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Generator, Iterator, List, Optional

from llama_index.core.base.response.schema import Response, StreamingResponse
from llama_index.core.chat_engine.types import AgentChatResponse, BaseChatEngine, StreamingAgentChatResponse
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode

from assistant.types import Answer, Citation

# What a node tells a llama-index LLM besides its text (the rest is for programs, not prompts).
LLM_METADATA = ("source", "title", "page")


def citation_node(c: Citation, answer: bool = True) -> NodeWithScore:
    """A citation as a llama-index node: ``id_`` the chunk id, the passage's offsets in its
    document's extracted text, and its metadata (with ``answer``: its number, whether the answer
    cites it, and the spans marked in it)."""
    metadata = {"source": c.source, "title": c.title, "page": c.page, "doc_id": c.doc_id,
                "chunk_id": c.chunk_id}
    if answer:
        metadata.update(n=c.n, cited=c.cited, highlights=c.highlights, answer_spans=c.answer_spans)
    node = TextNode(
        id_=c.chunk_id, text=c.text, start_char_idx=c.start, end_char_idx=c.end, metadata=metadata,
        excluded_llm_metadata_keys=[k for k in metadata if k not in LLM_METADATA],
        excluded_embed_metadata_keys=list(metadata),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=c.doc_id)},
    )
    return NodeWithScore(node=node, score=c.score)


def answer_nodes(answer: Answer) -> list[NodeWithScore]:
    return [citation_node(c) for c in answer.citations]


def answer_response(answer: Answer) -> Response:
    """An ``Answer`` as llama-index's ``Response``."""
    return Response(response=answer.answer, source_nodes=answer_nodes(answer), metadata=answer.to_dict())


def history_dicts(messages: list[ChatMessage]) -> list[dict]:
    """llama-index chat messages as the assistant's history (role/content dicts)."""
    return [{"role": m.role.value, "content": m.content or ""} for m in messages
            if m.role in (MessageRole.USER, MessageRole.ASSISTANT)]


class AssistantRetriever(BaseRetriever):
    """The passages ``Assistant.ask`` shows for a question, as llama-index nodes, in its order.

    They are the citations of the answer without an LLM (``mode="extractive"``): hybrid
    retrieval of ``CANDIDATE_PASSAGES``, the evidence read in all of them, ``k`` shown. A
    generated answer shows the same passages unless the model's window cuts the last ones.
    Each node's score is the fused retrieval score.

    Args:
        assistant: the ``Assistant``.
        k: passages per question (default: its settings').
        docs: only these documents (sources as listed, or paths).
    """

    def __init__(self, assistant, k: int | None = None, docs: list[str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._assistant, self._k, self._docs = assistant, k, docs

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        answer = self._assistant.ask(query_bundle.query_str, k=self._k, docs=self._docs, mode="extractive")
        return [citation_node(c, answer=False) for c in answer.citations]


@dataclass
class AnswerStream(StreamingResponse):
    """A streaming answer: ``response_gen`` yields the text as it is written (the model's raw
    text, or the quote); once it is read to its end, ``str(response)``, ``source_nodes`` and
    ``metadata`` are the checked answer's. ``answer`` is the ``Answer`` itself."""

    answer: Optional[Answer] = None

    def _finish(self) -> None:
        if self.answer is None and self.response_gen is not None:
            for _ in self.response_gen:
                pass

    def __str__(self) -> str:
        self._finish()
        return self.response_txt or ""

    def get_response(self) -> Response:
        self._finish()
        return Response(self.response_txt, self.source_nodes, self.metadata)

    def print_response_stream(self) -> None:
        if self.answer is None and self.response_gen is not None:
            for text in self.response_gen:
                print(text, end="", flush=True)
        else:
            print(self.response_txt)


def _pieces(stream: Iterator, done) -> Generator[str, None, None]:
    """The text pieces of ``Assistant.stream``; ``done(answer)`` gets the final ``Answer``.
    When no text was streamed (an abstention), the answer's text is the one piece."""
    streamed = False
    try:
        for item in stream:
            if isinstance(item, Answer):
                if not streamed and item.answer:
                    yield item.answer
                done(item)
            else:
                streamed = True
                yield item
    finally:
        stream.close()


def answer_stream(stream: Iterator) -> AnswerStream:
    """``Assistant.stream(...)`` as llama-index's ``StreamingResponse`` (an ``AnswerStream``)."""
    response = AnswerStream(response_gen=None)

    def done(answer: Answer) -> None:
        response.answer, response.response_txt = answer, answer.answer
        response.source_nodes[:] = answer_nodes(answer)
        response.metadata = answer.to_dict()

    response.response_gen = _pieces(stream, done)
    return response


class AnswerQueryEngine(CustomQueryEngine):
    """A llama-index query engine answering as ``Assistant.ask`` does: the response is the
    checked answer, its source nodes the citations (see the module docstring).

    Args:
        assistant: the ``Assistant``.
        streaming: return an ``AnswerStream`` (``StreamingResponse``) instead of a ``Response``.
        mode: ``auto``, ``generate`` or ``extractive`` (default: the settings').
        k: passages per question (default: the settings').
        docs: only these documents.
    """

    assistant: Any
    streaming: bool = False
    mode: Optional[str] = None
    k: Optional[int] = None
    docs: Optional[List[str]] = None

    def custom_query(self, query_str: str):
        if self.streaming:
            return answer_stream(self.assistant.stream(query_str, k=self.k, docs=self.docs, mode=self.mode))
        return answer_response(self.assistant.ask(query_str, k=self.k, docs=self.docs, mode=self.mode))

    async def acustom_query(self, query_str: str):
        return await asyncio.to_thread(self.custom_query, query_str)


@dataclass
class AnswerChatStream(StreamingAgentChatResponse):
    """A streaming chat answer: ``response_gen`` yields the text as it is written; once it is
    read to its end, ``response``, ``source_nodes`` and ``metadata`` are the checked answer's."""

    answer: Optional[Answer] = None
    metadata: Optional[dict] = None
    pieces: Optional[Generator[str, None, None]] = None

    def __str__(self) -> str:
        if self.answer is None and self.pieces is not None:
            for _ in self.pieces:
                pass
        return self.response

    @property
    def response_gen(self) -> Generator[str, None, None]:
        if self.pieces is not None:
            yield from self.pieces

    async def async_response_gen(self) -> AsyncGenerator[str, None]:
        end = object()
        while self.pieces is not None:
            piece = await asyncio.to_thread(next, self.pieces, end)
            if piece is end:
                return
            yield piece


class AnswerChatEngine(BaseChatEngine):
    """A llama-index chat engine answering as ``Assistant.chat`` does: a follow-up is rewritten
    from the conversation and answered from the document it is about; the response is the
    checked answer, its source nodes the citations. The engine keeps the conversation (the
    questions and the checked answers); ``reset()`` forgets it, and a ``chat_history`` passed
    to a call replaces it.

    Args:
        assistant: the ``Assistant``.
        mode, k, docs: as for ``AnswerQueryEngine``.
        chat_history: the conversation so far.
    """

    def __init__(self, assistant, mode: str | None = None, k: int | None = None,
                 docs: list[str] | None = None, chat_history: list[ChatMessage] | None = None):
        self._assistant = assistant
        self._options = {"mode": mode, "k": k, "docs": docs}
        self._history: list[ChatMessage] = list(chat_history or [])

    @property
    def chat_history(self) -> List[ChatMessage]:
        return list(self._history)

    def reset(self) -> None:
        self._history = []

    def _remember(self, message: str, answer: Answer) -> None:
        self._history += [ChatMessage(role=MessageRole.USER, content=message),
                          ChatMessage(role=MessageRole.ASSISTANT, content=answer.answer)]

    def chat(self, message: str, chat_history: Optional[List[ChatMessage]] = None) -> AgentChatResponse:
        if chat_history is not None:
            self._history = list(chat_history)
        answer = self._assistant.chat(message, history_dicts(self._history), **self._options)
        self._remember(message, answer)
        return AgentChatResponse(response=answer.answer, source_nodes=answer_nodes(answer),
                                 metadata=answer.to_dict())

    def stream_chat(self, message: str, chat_history: Optional[List[ChatMessage]] = None) -> AnswerChatStream:
        if chat_history is not None:
            self._history = list(chat_history)
        response = AnswerChatStream()

        def done(answer: Answer) -> None:
            response.answer, response.response = answer, answer.answer
            response.source_nodes[:] = answer_nodes(answer)
            response.metadata = answer.to_dict()
            response.is_done = True
            self._remember(message, answer)

        response.pieces = _pieces(self._assistant.stream(message, history=history_dicts(self._history),
                                                         **self._options), done)
        return response

    async def achat(self, message: str, chat_history: Optional[List[ChatMessage]] = None) -> AgentChatResponse:
        return await asyncio.to_thread(self.chat, message, chat_history)

    async def astream_chat(self, message: str,
                           chat_history: Optional[List[ChatMessage]] = None) -> AnswerChatStream:
        return self.stream_chat(message, chat_history)
