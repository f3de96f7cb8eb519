"""A plain llama-index pipeline to compare against, offline and with the same models.

llama-index's defaults where it has them: ``SimpleDirectoryReader`` (default file
readers), ``SentenceSplitter()`` (1024-token chunks, 200 overlap), ``VectorStoreIndex``
over a Chroma collection, ``as_query_engine(similarity_top_k=k)`` with its default
prompt; for conversations, the question condensed as llama-index's
``CondenseQuestionChatEngine`` does it. Ours where it must be: the same embedder and the
same bundled LLM, passed explicitly (llama-index's global ``Settings`` would reach for OpenAI).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from assistant.types import Answer, Citation


def wrap_embedder(embedder):
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class OurEmbedding(BaseEmbedding):
        _embedder: Any = PrivateAttr()

        def __init__(self, inner, **kw):
            super().__init__(model_name=inner.name, **kw)
            self._embedder = inner

        def _get_query_embedding(self, query: str):
            return self._embedder.embed([query])[0]

        def _get_text_embedding(self, text: str):
            return self._embedder.embed([text])[0]

        def _get_text_embeddings(self, texts):
            return self._embedder.embed(list(texts))

        async def _aget_query_embedding(self, query: str):
            return self._get_query_embedding(query)

    return OurEmbedding(embedder)


def wrap_llm(llm, max_tokens: int):
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback
    from pydantic import PrivateAttr

    class OurLLM(CustomLLM):
        num_output: int = max_tokens
        _llm: Any = PrivateAttr()

        def __init__(self, inner, **kw):
            super().__init__(**kw)
            self._llm = inner

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=2048, num_output=self.num_output,
                               model_name=self._llm.name)

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
            text = "".join(self._llm.stream([{"role": "user", "content": prompt}], self.num_output))
            return CompletionResponse(text=text)

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            text = ""
            for piece in self._llm.stream([{"role": "user", "content": prompt}], self.num_output):
                text += piece
                yield CompletionResponse(text=text, delta=piece)

    return OurLLM(llm)


class Baseline:
    """Index ``docs`` the llama-index way and answer with its default query engine.

    Args:
        docs: the folder of documents.
        persist_dir: where its Chroma files go.
        embedder: the embedder (the same as ours).
        llm: the LLM (the same as ours).
        k: passages per question (the same as ours).
    """

    name = "llama-index baseline"

    def __init__(self, docs: Path, persist_dir: Path, embedder, llm, k: int = 4,
                 max_tokens: int = 160):
        from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter

        try:
            from llama_index.vector_stores.chroma import ChromaVectorStore
        except ImportError as exc:
            raise ValueError("--baseline needs the eval extra: .venv/bin/pip install -e '.[eval]' "
                             "(scripts/install test includes it)") from exc

        from index.store import chroma_embedding_function, open_client

        # exclude_hidden=False: a corpus under ~/.cache would otherwise be skipped whole
        documents = SimpleDirectoryReader(str(docs), recursive=True, exclude_hidden=False).load_data()
        client = open_client(persist_dir)
        name = "baseline-" + hashlib.sha256(str(docs.resolve()).encode()).hexdigest()[:10]
        try:
            client.delete_collection(name)
        except Exception:  # not there yet
            pass
        collection = client.get_or_create_collection(name, embedding_function=chroma_embedding_function(embedder))
        storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
        self.index = VectorStoreIndex.from_documents(
            documents, storage_context=storage, embed_model=wrap_embedder(embedder),
            transformations=[SentenceSplitter()],
        )
        self.llm = wrap_llm(llm, max_tokens)
        self.engine = self.index.as_query_engine(llm=self.llm, similarity_top_k=k)
        self.retriever = self.index.as_retriever(similarity_top_k=k)
        self.backend = f"llama-index:{llm.name}"
        self.docs = docs

    def ask(self, question: str) -> Answer:
        """Answer with the default query engine; every passage it was given counts as cited."""
        response = self.engine.query(question)
        return Answer(question, str(response).strip(), False, "generate", self.backend,
                      _citations(response.source_nodes, self.docs))

    def chat(self, question: str, history: list[dict]) -> Answer:
        """A follow-up as llama-index's ``CondenseQuestionChatEngine`` does it: the LLM
        condenses history and question into one question, which the query engine answers."""
        if not history:
            return self.ask(question)
        from llama_index.core.base.llms.generic_utils import messages_to_history_str
        from llama_index.core.chat_engine.condense_question import DEFAULT_PROMPT
        from llama_index.core.llms import ChatMessage

        messages = [ChatMessage(role=m["role"], content=m["content"]) for m in history]
        condensed = self.llm.predict(DEFAULT_PROMPT, question=question,
                                     chat_history=messages_to_history_str(messages)).strip() or question
        response = self.engine.query(condensed)
        return Answer(question, str(response).strip(), False, "generate", self.backend,
                      _citations(response.source_nodes, self.docs), condensed)

    def search(self, question: str) -> list[tuple[str, int, int]]:
        """The passages (source, start, end) its retriever finds for ``question``."""
        out = []
        for hit in self.retriever.retrieve(question):
            start, end = _locate(self.docs, hit.node)
            out.append(((hit.node.metadata or {}).get("file_name", ""), start, end))
        return out


@functools.lru_cache(maxsize=64)
def _our_text(path: str) -> str:
    from index.errors import ReadError
    from index.readers import read

    try:
        return read(Path(path)).text
    except (ReadError, OSError):
        return ""


def _locate(docs: Path, node) -> tuple[int, int]:
    """The node's offsets in our reader's text of its file, so both systems are scored on one
    text (llama-index counts from its own reader's text, per page for a PDF)."""
    start, end = node.start_char_idx or 0, node.end_char_idx or 0
    meta = node.metadata or {}
    path = meta.get("file_path") or str(docs / meta.get("file_name", ""))
    text, content = _our_text(path), node.get_content()
    found = [i for i in _occurrences(text, content)]
    if found:
        best = min(found, key=lambda i: abs(i - start))
        return best, best + len(content)
    return start, end


def _occurrences(text: str, part: str):
    i = text.find(part) if part else -1
    while i >= 0:
        yield i
        i = text.find(part, i + 1)


def _citations(source_nodes, docs: Path) -> list[Citation]:
    citations = []
    for n, hit in enumerate(source_nodes, 1):
        node = hit.node
        meta = node.metadata or {}
        start, end = _locate(docs, node)
        citations.append(Citation(
            n=n, cited=True, doc_id=node.ref_doc_id or "", chunk_id=node.node_id,
            source=meta.get("file_name", ""), title=None,
            page=int(meta["page_label"]) if str(meta.get("page_label", "")).isdigit() else None,
            start=start, end=end,
            text=node.get_content(), highlights=[], score=float(hit.score or 0.0),
        ))
    return citations
