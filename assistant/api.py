"""``ask()`` and ``Assistant``: what ``from assistant import ...`` gives you, and the one door
the CLI, the chat and the llama-index engines use.

    >>> from assistant import Assistant, Settings
    >>> bot = Assistant(Settings.from_env(index_dir="/tmp/idx"))
    >>> bot.ingest(["seeds"])
    >>> bot.ask("Which platform did the ministry join?").answer
"""

from __future__ import annotations

import copy
import functools
import threading
from pathlib import Path
from typing import Iterator

from assistant.config import MODES, Settings, check_k
from assistant.conversations import Conversation, ConversationStore, Rating
from assistant.errors import CollectionError
from assistant.pipeline import followup, spelling
from assistant.pipeline.answering import Answering, Writer
from assistant.pipeline.merging import merge_answers, stamped
from assistant.pipeline.reader import shared_reader
from assistant.pipeline.retrieval import Retriever
from assistant.types import Answer
from index.catalog import Document
from index.collections import DEFAULT, Collections
from index.postgres.collections import open_collections
from index.embedding.embedder import make_embedder
from index.index import ChunkSettings, Index
from index.ingest import SyncReport, ingest, is_document_object
from index.readers import SUPPORTED_SUFFIXES
from index.removal import remove, remove_documents


_OPENING = threading.RLock()  # a collection's index, and the conversations file, are opened once
WATCH_WAIT = 600  # seconds a watched folder's sync waits for another writer (a CLI ingest)


class Assistant:
    """Answers questions over one collection (an index), with cited passages; the other collections
    of its data folder through ``collection(name)``, and several at once with ``collections=``.

    Args:
        settings: where the index is and how to answer (see ``Settings``).
        embedder: the embedding model (default: the bundled all-MiniLM-L6-v2), with ``name``,
            ``dim``, ``max_tokens``, ``count_tokens``, ``fits`` and ``embed`` (``index.embedding``).
        llm: the LLM: any llama-index ``LLM`` (default: from ``settings.backend``, loaded when
            an answer first needs it).
        embed_model: instead of ``embedder``, a llama-index embedding (``BaseEmbedding``), used
            through ``index.llamaindex.EmbeddingAdapter`` (wrap it yourself to declare its token limit).

    Its parts as llama-index components: ``as_retriever``, ``as_query_engine``,
    ``as_chat_engine``, ``embed_model`` and ``node_parser`` (docs/llama-index.md).
    The answering steps are ``answering`` (``assistant.pipeline.answering``).
    """

    supported_suffixes = SUPPORTED_SUFFIXES  # the file types ``ingest`` reads

    def __init__(self, settings: Settings, embedder=None, llm=None, embed_model=None, create: bool = True):
        if embedder is not None and embed_model is not None:
            raise ValueError("pass embedder or embed_model, not both")
        if not create:
            open_collections(settings.data, settings.default_dir, settings.catalog_url).require(settings.collection)
        self.settings = settings
        self._family: dict[str, Assistant] = {settings.collection: self}  # collections open, shared
        self._store: list[ConversationStore] = []  # the data folder's conversations, opened on first use
        self._collections_list: Collections | None = None
        if embed_model is not None:
            from index.llamaindex import as_embedder

            embedder = as_embedder(embed_model)
        self.embedder = embedder or embedder_for(settings)
        self.index = Index(
            settings.index_dir,
            self.embedder,
            chroma_url=settings.chroma_url,
            chunking=ChunkSettings(settings.chunk_tokens, settings.overlap_tokens),
            max_file_bytes=int(settings.max_file_mb * 1_000_000),
            catalog_url=settings.catalog_url,
            collection=settings.collection,
        )
        self.retriever = Retriever(self.index)
        self.answering = Answering(self.index, self.embedder, self.retriever, Writer(settings, llm),
                                   shared_reader(settings.threads) if settings.reader == "on" else None)

    @property
    def llm(self):
        """The LLM (a llama-index ``LLM``), loaded on first use; None with backend ``none``."""
        return self.answering.writer.llm

    @property
    def has_llm(self) -> bool:
        """True when an LLM can be asked (without loading it)."""
        return self.answering.writer.has_llm

    def with_backend(self, backend: str) -> "Assistant":
        """An assistant answering with another backend, sharing this one's index and embedder."""
        other = copy.copy(self)
        other.settings = self.settings.with_(backend=backend)
        other._family = {other.settings.collection: other}  # its collections answer with its backend
        other.answering = Answering(self.index, self.embedder, self.retriever, Writer(other.settings),
                                    self.answering.reader)
        return other

    @property
    def backend(self) -> str:
        return self.answering.writer.backend

    # collections ----------------------------------------------------------
    @property
    def collection_name(self) -> str:
        return self.settings.collection

    def _collections(self) -> Collections:
        """The data folder's collections (kept: with a PostgreSQL catalog it holds connections)."""
        if self._collections_list is None:
            self._collections_list = open_collections(self.settings.data, self.settings.default_dir,
                                                      self.settings.catalog_url)
        return self._collections_list

    def collections(self) -> list[str]:
        """The collections of this data folder, ``default`` first."""
        return self._collections().names()

    def collection(self, name: str) -> "Assistant":
        """The assistant of another collection of this data folder (which must exist), sharing
        this one's models and conversations; raises CollectionError naming the known ones."""
        with _OPENING:
            known = self._family.get(name)
            if known is not None and (name == DEFAULT or self._still_there(known)):
                return known
            self._family.pop(name, None)  # deleted or renamed by another process
            self._collections().require(name)
            other = copy.copy(self)
            other.settings = self.settings.for_collection(name)
            other.index = Index(other.settings.index_dir, self.embedder, chroma_url=self.settings.chroma_url,
                                chunking=self.index.chunking, max_file_bytes=self.index.max_file_bytes,
                                catalog_url=self.settings.catalog_url, collection=name)
            other.retriever = Retriever(other.index)
            other.answering = Answering(other.index, self.embedder, other.retriever, self.answering.writer,
                                        self.answering.reader)
            self._family[name] = other
            return other

    def _still_there(self, known: "Assistant") -> bool:
        """Whether an open collection was not deleted or renamed by another process meanwhile."""
        if self.settings.catalog_url:
            return known.index.catalog.registered_name() == known.collection_name
        return known.settings.index_dir.is_dir()

    def create_collection(self, name: str) -> None:
        self._collections().create(name)

    def rename_collection(self, old: str, new: str) -> None:
        """Rename a collection (not ``default``, nor one open in this process, nor one whose
        vectors are on a Chroma server without a PostgreSQL catalog: they are kept under its
        folder's path)."""
        if self.settings.chroma_url and not self.settings.catalog_url:
            raise CollectionError("a collection whose vectors are on a Chroma server cannot be renamed: "
                                  f"create {new!r}, ingest its documents there, then delete {old!r}")
        if old in self._family and old != DEFAULT:
            raise CollectionError(f"collection {old!r} is in use here; rename it from another process "
                                  "(`assistant collections rename`) while nothing serves it")
        self._collections().rename(old, new)

    def delete_collection(self, name: str) -> None:
        """Delete a collection (not ``default``) and everything indexed in it; files stay on disk.
        Refused (IndexBusy) while another process writes to it."""
        self._collections().require(name)
        if name == DEFAULT:
            self._collections().delete(name)  # refused, saying why
        lock = self.collection(name).index.lock()
        try:
            if self.settings.chroma_url:  # its vectors are on the server: drop them too
                self.collection(name).index.store.drop()
            self._collections().delete(name)
        finally:
            lock.release()
        if name in self._family:
            self._family.pop(name).index.close()

    # conversations --------------------------------------------------------
    @property
    def conversation_store(self) -> ConversationStore:
        """The data folder's conversations and ratings (``assistant.conversations``)."""
        with _OPENING:
            if not self._store:
                self._store.append(ConversationStore(self.settings.data, self.settings.catalog_url))
        return self._store[0]

    def conversations(self, user: str = "") -> list[Conversation]:
        """``user``'s conversations (the chat's login; "" without one), the most recent first."""
        return self.conversation_store.list(user)

    def conversation(self, conversation_id: str, user: str = "") -> Conversation:
        """A stored conversation with its turns; raises ConversationNotFound for an unknown id."""
        return self.conversation_store.get(conversation_id, user)

    def new_conversation(self, user: str = "", title: str = "") -> Conversation:
        return self.conversation_store.create(user, title)

    def rate(self, conversation_id: str, n: int, rating: int, correction: str | None = None,
             user: str = "") -> Rating:
        """Rate turn ``n`` of a conversation (1 good, -1 wrong), with an optional correction;
        kept with the versions of the documents it cites, for ``assistant eval --from-feedback``."""
        turn = next((t for t in self.conversation(conversation_id, user).turns if t.n == n), None)
        versions = {}
        for c in turn.answer.cited if turn else []:
            try:
                catalog = self.collection(c.collection or self.settings.collection).index.catalog
            except CollectionError:
                continue  # the collection is gone; the rating keeps the answer as shown
            doc = next((d for d in catalog.documents() if d.doc_id == c.doc_id), None)
            if doc is not None:
                versions[c.source] = doc.hash
        return self.conversation_store.rate(conversation_id, n, rating, correction, versions, user)

    def migrate(self, catalog_url: str, chroma_url: str | None = None, progress=None, wait: float = 0):
        """Copy this data folder's collections and conversations into the PostgreSQL catalog at
        ``catalog_url`` (vectors to the Chroma server at ``chroma_url``), checked
        (``assistant.migration``); returns its ``MigrationReport``."""
        from assistant.migration import migrate

        return migrate(self.settings, self.embedder, catalog_url, chroma_url, progress, wait)

    def warm_up(self) -> None:
        """Load the models and run each once, so the first answer is quick (the chat calls it
        while its page starts)."""
        self.embedder.embed(["warm up"])
        self.retriever.warm_up()
        spelling.english_words()
        if self.answering.reader is not None:
            self.answering.reader.read("warm up?", ["Warm up."], [(0, 0, 8)])
        if self.llm is not None:
            try:
                list(self.answering.writer.stream([{"role": "user", "content": "Hi"}], max_tokens=1))
            except Exception:  # an unreachable server is reported on the first question instead
                pass

    def ingest(self, paths: list, progress=None, rebuild: bool = False,
               wait: float = 0) -> SyncReport:
        """Index files and folders, and llama-index ``Document``s (see ``index.ingest.ingest``).

        ``paths`` may mix paths and documents (anything with ``id_``, ``text`` and
        ``metadata``, e.g. from a LlamaHub reader). A document is known by its ``id_``, listed
        with it as its source, and replaced only when its text or title changed.
        """
        items = [p if is_document_object(p) else Path(p) for p in paths]
        return ingest(self.index, items, progress=progress, rebuild=rebuild, wait=wait)

    def watch(self, folders: list, on_event=None, sync=None, settle: float | None = None, poll: bool | None = None):
        """A watcher (``index.watch.FolderWatcher``) keeping this collection in step with ``folders``:
        after each settled burst of changes, one sync of the folders that exist (``sync(folders)``,
        default ``ingest`` waiting for another writer). A folder that vanishes is reported and its
        documents stay indexed. ``start()`` it, or ``run()`` it until Ctrl-C; it syncs once at start."""
        from index.watch import SETTLE_SECONDS, FolderWatcher

        say = on_event or (lambda line: None)

        def ingest_existing(paths):
            existing = [p for p in paths if Path(p).is_dir()]
            for gone in sorted(set(map(str, paths)) - set(map(str, existing))):
                say(f"folder {gone} is gone: its documents stay indexed until it is back "
                    f"(or `assistant remove {gone} --folder`)")
            if not existing:
                return None
            report = self.ingest(existing, wait=WATCH_WAIT)
            say(f"synced {', '.join(map(str, existing))}: {report.summary()}")
            return report

        watcher = FolderWatcher([Path(f) for f in folders], sync or ingest_existing,
                                settle=SETTLE_SECONDS if settle is None else settle, poll=poll, on_event=say)
        watcher.sync_now()
        return watcher

    def remove(self, target: str, wait: float = 0, folder: bool = False) -> list[str]:
        """Remove a document by its source as listed (a llama-index ``Document``'s ``id_``), or its
        path; every document under a folder only with ``folder=True``. Returns the sources removed;
        raises ValueError (``index.errors.RemovalRefused``) for an ambiguous name, an unconfirmed
        folder, or ``/``."""
        return remove(self.index, target, wait=wait, folder=folder)

    def documents(self) -> list[Document]:
        return self.index.catalog.documents()

    def view(self, document: str, start: int | None = None, end: int | None = None,
             answers: list | tuple = (), page: int | None = None, scale: float = 1.5):
        """What a viewer shows of an indexed document (its source as listed, path or id): a PDF's
        page as an image with the passage ``[start, end)`` and the ``answers`` boxed (``index.viewing.
        PageView``), else its text with headings and those spans (``TextView``). Raises ValueError for
        a document this collection does not list, ``ReadError`` for a page out of range or a file
        gone, encrypted or unreadable."""
        from index.viewing import view_document

        doc = self._document(document)
        if page is not None and (isinstance(page, bool) or not isinstance(page, int)):
            raise ValueError(f"page must be a whole number, not {page!r}")
        return view_document(doc, start, end, [tuple(a) for a in answers], page, scale, self.index.max_file_bytes)

    def _document(self, name: str) -> Document:
        absolute = str(Path(name).absolute()) if name else ""
        for d in self.documents():
            if name in (d.source, d.doc_id) or d.path == absolute:
                return d
        raise ValueError(f"no indexed document {name!r} in collection {self.collection_name!r}; "
                         "see `assistant list` for what is indexed")

    def doc_ids(self, docs: list[str] | None) -> list[str] | None:
        """Document ids for sources or paths; raises ValueError naming any unknown one."""
        if not docs:
            return None
        known = self.documents()
        out = []
        for d in docs:
            absolute = str(Path(d).absolute())
            match = [x.doc_id for x in known if x.source == d or x.path == absolute or x.doc_id == d]
            if not match:
                raise ValueError(f"no indexed document {d!r}; see `assistant list` for what is indexed")
            out.extend(match)
        return out

    def remove_documents(self, target: str, wait: float = 0, folder: bool = False) -> list[Document]:
        """As ``remove``, returning the documents removed."""
        return remove_documents(self.index, target, wait=wait, folder=folder)

    # answers --------------------------------------------------------------
    def ask(self, question: str, k: int | None = None, docs: list[str] | None = None,
            mode: str | None = None) -> Answer:
        """Answer one question; returns the checked ``Answer``."""
        return _last(self.stream(question, history=None, k=k, docs=docs, mode=mode))

    def chat(self, question: str, history: list[dict] | None, **kwargs) -> Answer:
        """Answer a question in a conversation (``history``: earlier role/content messages)."""
        return _last(self.stream(question, history=history, **kwargs))

    def stream(self, question: str, history: list[dict] | None = None, k: int | None = None,
               docs: list[str] | None = None, mode: str | None = None, collections: list[str] | None = None,
               conversation: str | None = None, user: str = "") -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated, then the final checked ``Answer``.

        The streamed text is the model's raw output (or the quote); only the final
        ``Answer`` has its claims and citations checked (and may differ from it).
        ``collections``: ask these collections (of this data folder) instead of this one, each
        answering alone, merged into one answer (``assistant.pipeline.merging``).
        ``conversation``: a stored conversation's id: its turns are the history (``history`` only
        counts while it has none) and this turn is added to it.
        """
        names = list(dict.fromkeys(collections or [self.settings.collection]))
        bots = [self.collection(name) for name in names]
        if conversation is not None:  # its stored turns, or the history given for a new one
            history = self.conversation(conversation, user).history() or history
        if len(bots) == 1:
            answer = None
            for item in bots[0]._stream(question, history, k, docs, mode):
                if isinstance(item, Answer):
                    answer = stamped(item, names[0])
                else:
                    yield item
        else:
            if docs:
                raise ValueError("restricting to documents works on one collection; ask one collection, "
                                 "or leave out the documents")
            answer = merge_answers(question, [(name, stamped(_last(bot._stream(question, history, k, None, mode)),
                                                             name)) for name, bot in zip(names, bots)])
        if conversation is not None:
            self.conversation_store.add_turn(conversation, question, answer, names, user)
        yield answer

    def _stream(self, question: str, history: list[dict] | None, k: int | None,
                docs: list[str] | None, mode: str | None) -> Iterator[str | Answer]:
        question = question or ""
        if not question.strip():
            raise ValueError("the question is empty")
        # never answer from vectors another embedder made (raises SettingsMismatch, saying how to rebuild)
        self.index.check_settings()
        k = check_k(self.settings.k if k is None else k)
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not self.has_llm:
            mode = "extractive"
        doc_ids = self.doc_ids(docs)
        history = followup.check_history(history)
        yield from self.answering.stream(question, history, k, doc_ids, mode)

    def search(self, query: str, k: int, docs: list[str] | None = None) -> list:
        """The ``k`` passages hybrid retrieval ranks first for ``query`` (``Hit``s: chunk, score),
        before any reading: what ``eval`` measures as retrieval alone."""
        return self.retriever.search(query, k, self.doc_ids(docs))

    def summarize(self, doc: str, mode: str | None = None) -> Answer:
        """A summary of one indexed document (its source as listed, or its path), each sentence cited."""
        return self.ask("Summarize the document.", docs=[doc], mode=mode)

    def as_retriever(self, k: int | None = None, docs: list[str] | None = None):
        """A llama-index ``BaseRetriever`` giving the passages ``ask`` shows, in its order
        (``assistant.llamaindex.AssistantRetriever``)."""
        from assistant.llamaindex import AssistantRetriever

        return AssistantRetriever(self, k=k, docs=docs)

    def as_query_engine(self, streaming: bool = False, mode: str | None = None, k: int | None = None,
                        docs: list[str] | None = None):
        """A llama-index query engine whose response is the checked answer and whose source nodes
        are its citations (``assistant.llamaindex.AnswerQueryEngine``)."""
        from assistant.llamaindex import AnswerQueryEngine

        return AnswerQueryEngine(assistant=self, streaming=streaming, mode=mode, k=k, docs=docs)

    def as_chat_engine(self, mode: str | None = None, k: int | None = None, docs: list[str] | None = None,
                       chat_history=None):
        """A llama-index chat engine answering follow-ups as ``chat`` does, keeping the
        conversation (``assistant.llamaindex.AnswerChatEngine``); ``stream_chat`` streams."""
        from assistant.llamaindex import AnswerChatEngine

        return AnswerChatEngine(self, mode=mode, k=k, docs=docs, chat_history=chat_history)

    @property
    def embed_model(self):
        """The embedder as a llama-index ``BaseEmbedding`` (e.g. for a ``VectorStoreIndex``)."""
        from index.llamaindex import as_embed_model

        return as_embed_model(self.embedder)

    @property
    def node_parser(self):
        """The chunker as a llama-index ``NodeParser``, with this index's sizes and the
        embedder's fit check (``index.llamaindex.ChunkParser``)."""
        from index.llamaindex import ChunkParser

        chunking = self.index.chunking
        return ChunkParser(max_tokens=chunking.max_tokens, overlap_tokens=chunking.overlap_tokens,
                           fits=self.embedder.fits)


def embedder_for(settings: Settings):
    """The bundled all-MiniLM-L6-v2 embedder on the runtime the settings ask for (loaded on first use)."""
    return make_embedder(settings.embed_runtime, threads=settings.threads, workers=settings.embed_workers)


def _last(stream: Iterator[str | Answer]) -> Answer:
    result = None
    for item in stream:
        result = item
    assert isinstance(result, Answer)
    return result


@functools.lru_cache(maxsize=4)
def _assistant_for(settings: Settings) -> Assistant:
    return Assistant(settings)


def ask(question: str, k: int | None = None, docs: list[str] | None = None,
        mode: str | None = None, **settings) -> Answer:
    """Answer one question over the default index (or ``index_dir=...``).

    Args:
        question: the question.
        k: passages to give the answerer, 1 to 10 (default 4).
        docs: restrict to these documents (sources as listed, or paths).
        mode: ``auto`` (quote the best sentences when the evidence is strong, else the
            LLM), ``generate`` (the LLM) or ``extractive`` (best sentences, no LLM).
        **settings: any ``Settings`` field, e.g. ``index_dir``, ``backend``, ``llm_url``.

    Returns:
        The checked ``Answer``; ``answer.to_dict()`` is the JSON format.
    """
    assistant = _assistant_for(Settings.from_env(**settings))
    return assistant.ask(question, k=k, docs=docs, mode=mode)
