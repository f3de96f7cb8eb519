"""Our ingest parts as llama-index components, and llama-index embeddings as ours.

``ChunkParser`` is the chunker as a ``NodeParser`` (exact offsets, the embedding model's fit
check); ``AssistantEmbedding`` is our embedder as a ``BaseEmbedding``; ``EmbeddingAdapter`` makes
any ``BaseEmbedding`` our embedder, declaring the name, dimension and token limit the index records.
Importing this module imports llama-index; ``index.ingest`` never does.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, MetadataMode, NodeRelationship, TextNode

from index.embedding.embedder import estimate_tokens
from index.errors import EmbedderError
from index.text.chunking import chunk_stream, chunk_text

# Tokens a llama-index embedding is assumed to read when its adapter is not told: most read 512
# or more, and its texts are counted with ``estimate_tokens``, an over-estimate.
DEFAULT_EMBED_TOKENS = 512
PROBE_TEXT = "How many dimensions do your vectors have?"


class ChunkParser(NodeParser):
    """Sentence-aware chunks with exact offsets, as a llama-index ``NodeParser``.

    Args:
        max_tokens: the most tiktoken tokens in one chunk.
        overlap_tokens: whole sentences of up to this many tokens repeat at the start of the next.
        fits: the embedding model's check that it reads a chunk whole (e.g. ``embedder.fits``);
            a chunk failing it is shrunk until it passes.
    """

    max_tokens: int = Field(default=200, gt=0, description="the most tiktoken tokens in one chunk")
    overlap_tokens: int = Field(default=30, ge=0, description="tokens of whole sentences repeated")
    fits: Optional[Callable[[str], bool]] = Field(default=None, exclude=True,
                                                  description="the embedding model's fit check")

    @classmethod
    def class_name(cls) -> str:
        return "ChunkParser"

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False,
                     **kwargs: Any) -> List[BaseNode]:
        out: List[BaseNode] = []
        for node in nodes:
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            spans = chunk_text(text, self.max_tokens, self.overlap_tokens, fits=self.fits)
            out.extend(self._nodes(node, ((s.start, s.end, text[s.start:s.end]) for s in spans)))
        return out

    def stream_nodes(self, blocks: Iterable[str], document: BaseNode | None = None) -> Iterator[TextNode]:
        """Nodes of a text given in blocks (e.g. a large file read piece by piece), holding a
        window of it at a time (``index.text.chunking.chunk_stream``); offsets count from its start.
        ``document`` (optional) gives their metadata and source."""
        document = document or Document(text="")
        for i, (span, text) in enumerate(chunk_stream(blocks, self.max_tokens, self.overlap_tokens,
                                                      fits=self.fits)):
            node = next(self._nodes(document, [(span.start, span.end, text)], first=i))
            if self.include_metadata:
                node.metadata = dict(document.metadata)
            yield node

    def _nodes(self, parent: BaseNode, spans: Iterable[tuple[int, int, str]],
               first: int = 0) -> Iterator[TextNode]:
        source = parent.as_related_node_info()
        for i, (start, end, text) in enumerate(spans, first):
            yield TextNode(
                id_=self.id_func(i, parent), text=text, start_char_idx=start, end_char_idx=end,
                excluded_embed_metadata_keys=list(parent.excluded_embed_metadata_keys),
                excluded_llm_metadata_keys=list(parent.excluded_llm_metadata_keys),
                relationships={NodeRelationship.SOURCE: source},
            )

    def _postprocess_parsed_nodes(self, nodes, parent_doc_map):
        # llama-index re-finds each node's text in its document to set the offsets, which picks
        # the wrong place for a repeated passage; ours are exact, so they are kept.
        offsets = [(n.start_char_idx, n.end_char_idx) for n in nodes]
        nodes = super()._postprocess_parsed_nodes(nodes, parent_doc_map)
        for node, (start, end) in zip(nodes, offsets):
            node.start_char_idx, node.end_char_idx = start, end
        return nodes


class AssistantEmbedding(BaseEmbedding):
    """Our embedder (e.g. the bundled all-MiniLM-L6-v2 on ONNX Runtime) as a llama-index
    ``BaseEmbedding``: unit-length vectors, the same for queries and texts.

    Args:
        embedder: an ``index.embedding.embedder`` embedder (``name``, ``dim``, ``max_tokens``, ``embed``).
    """

    embed_batch_size: int = Field(default=64, gt=0)
    _embedder: Any = PrivateAttr()

    def __init__(self, embedder, **kwargs: Any):
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "AssistantEmbedding"

    @property
    def embedder(self):
        """The embedder it wraps."""
        return self._embedder

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embedder.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embedder.embed([text])[0]

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._embedder.embed(list(texts))


class EmbeddingAdapter:
    """A llama-index embedding (``OllamaEmbedding``, ``HuggingFaceEmbedding``, …) as the
    assistant's embedder.

    The index records the embedder's ``name`` and ``dim``; an index built by another one is
    refused until rebuilt. The chunker keeps every chunk within ``max_tokens`` as
    ``count_tokens`` counts. Vectors are scaled to unit length (the index compares by cosine).

    Args:
        model: the llama-index ``BaseEmbedding``.
        max_tokens: the most tokens the model reads of one text (default ``DEFAULT_EMBED_TOKENS``).
        dim: its vectors' dimension (default: asked of the model once, when first needed).
        name: what the index records (default ``CLASS:MODEL_NAME``, e.g.
            ``OllamaEmbedding:nomic-embed-text``).
        count_tokens: the model's token count (default ``index.embedding.embedder.estimate_tokens``, an
            over-estimate).
    """

    def __init__(self, model, max_tokens: int | None = None, dim: int | None = None,
                 name: str | None = None, count_tokens: Callable[[str], int] | None = None):
        self.model = model
        self.name = name or f"{type(model).__name__}:{model.model_name}"
        self.max_tokens = max_tokens or DEFAULT_EMBED_TOKENS
        self.count_tokens = count_tokens or estimate_tokens
        self._dim = dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embed([PROBE_TEXT])[0])
        return self._dim

    def fits(self, text: str) -> bool:
        """True when the model reads all of ``text``."""
        return self.count_tokens(text) <= self.max_tokens

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``."""
        if not texts:
            return []
        try:
            vectors = self.model.get_text_embedding_batch(list(texts))
        except Exception as exc:
            if _unreachable(exc):  # no text would fare better: stop the ingest, say why
                raise EmbedderError(f"cannot reach the embedding model {self.name}: {exc}") from exc
            raise
        return [_unit(v) for v in vectors]


def _unit(vector) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(x) / norm for x in vector]


def _unreachable(exc: BaseException) -> bool:
    """A connection failure of a served embedding model (Ollama's client raises ConnectionError;
    httpx's, or OpenAI's)."""
    httpx, openai = sys.modules.get("httpx"), sys.modules.get("openai")
    return bool(isinstance(exc, ConnectionError)
                or (httpx and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)))
                or (openai and isinstance(exc, openai.APIConnectionError)))


def as_embedder(model):
    """``model`` as our embedder: ours as it is, a llama-index embedding through ``EmbeddingAdapter``."""
    if isinstance(model, AssistantEmbedding):
        return model.embedder
    if isinstance(model, BaseEmbedding):
        return EmbeddingAdapter(model)
    return model


def as_embed_model(embedder) -> BaseEmbedding:
    """Our embedder as a llama-index ``BaseEmbedding`` (an adapted one: the model it adapts)."""
    if isinstance(embedder, EmbeddingAdapter):
        return embedder.model
    return AssistantEmbedding(embedder)
