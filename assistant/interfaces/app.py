"""The chat server's state, apart from the page: the assistant and its collections, uploads and the
one ingest job, watched folders, conversations and the viewer (``App``); gradio-free, so it is
tested without a browser.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from assistant.api import Assistant
from assistant.config import check_k
from assistant.errors import IndexProblem, ReadError, StoreUnavailable
from assistant.interfaces.rendering import chat_text, render_view
from assistant.types import Answer

# errors shown on the page as a line of text, rather than as the chat's error box
SHOWN_ERRORS = (ValueError, IndexProblem, StoreUnavailable, ReadError)
INGEST_WAIT = 600  # seconds an upload's ingest waits for another writer (a CLI ingest) to finish
PAGE_SCALE = 1.5  # a PDF page is rendered at 1.5 pixels per point (more when zoomed in)

def safe_upload_name(name: str) -> str:
    """A file name that stays inside the upload folder: no folders, no leading dots."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[\x00-\x1f]", "", base).strip().lstrip(".")
    if not base or base in (".", ".."):
        raise ValueError(f"unusable file name {name!r}")
    return base[:200]


@dataclass
class IngestJob:
    """The one background ingest a server runs at a time, and what it has done so far
    (``App._enqueue`` queues the syncs it runs: uploads and watched folders)."""

    running: bool = False
    done: int = 0
    total: int = 0
    current: str = ""
    message: str = "No indexing has run yet."
    started: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notice(self) -> str | None:
        if not self.running:
            return None
        return (f"Indexing is in progress ({self.done} of {self.total} files done): this answer "
                "uses only the documents indexed so far.")


class App:
    """Server-side state shared by all sessions: the assistant (and its collections), uploads,
    the ingest job, watched folders and the stored conversations."""

    def __init__(self, bot: Assistant, upload_dir: Path | None = None,
                 allowed: tuple[str, ...] = Assistant.supported_suffixes, max_upload_mb: float | None = None):
        self.bot = bot
        self._upload_dir = upload_dir
        self.allowed = tuple(s.lower() for s in allowed)
        self.max_upload_bytes = int((max_upload_mb or bot.settings.max_file_mb) * 1_000_000)
        self.job = IngestJob()
        self._pending: list[tuple[str, tuple[Path, ...]]] = []  # (collection, folders) syncs waiting
        self._bots: dict[str, Assistant] = {bot.settings.backend: bot}
        self.watcher = None
        self.watch_note = ""  # what the watcher says about a vanished folder

    @property
    def upload_dir(self) -> Path:
        return self._upload_dir if self._upload_dir is not None else self.bot.settings.index_dir / "uploads"

    @upload_dir.setter
    def upload_dir(self, value: Path) -> None:
        self._upload_dir = value

    def collection(self, name: str | None) -> Assistant:
        """The assistant of collection ``name`` (the served one when None)."""
        return self.bot if not name or name == self.bot.collection_name else self.bot.collection(name)

    def collections(self) -> list[str]:
        return self.bot.collections()

    def uploads_of(self, name: str | None) -> Path:
        """The upload folder of a collection (the served one's when None)."""
        if not name or name == self.bot.collection_name:
            return self.upload_dir
        return self.collection(name).settings.index_dir / "uploads"

    def backends(self) -> list[str]:
        names = [self.bot.settings.backend]
        if self.bot.settings.backend == "openai":
            names.append("bundled")
        names.append("none")
        return list(dict.fromkeys(names))

    def using(self, backend: str | None) -> Assistant:
        """The assistant answering with ``backend`` (sharing index, retriever and embedder)."""
        backend = backend or self.bot.settings.backend
        if backend not in self.backends():
            raise ValueError(f"unknown backend {backend!r}")
        if backend not in self._bots:
            self._bots[backend] = self.bot.with_backend(backend)
        return self._bots[backend]

    # documents --------------------------------------------------------------
    def documents_table(self, collection: str | None = None) -> list[list]:
        return [[d.source, d.chunks, datetime.fromtimestamp(d.indexed_at).strftime("%Y-%m-%d %H:%M")]
                for d in self.collection(collection).documents()]

    def sources(self, collection: str | None = None) -> list[str]:
        return [d.source for d in self.collection(collection).documents()]

    def accept_uploads(self, paths: list[str], collection: str | None = None) -> tuple[list[str], list[str]]:
        """Copy uploaded files into the collection's upload folder; returns (accepted names, refusals)."""
        folder = self.uploads_of(collection)
        folder.mkdir(parents=True, exist_ok=True)
        accepted, refused = [], []
        for tmp in paths or []:
            original = getattr(tmp, "orig_name", None) or os.path.basename(str(tmp))
            try:
                name = safe_upload_name(original)
            except ValueError as exc:
                refused.append(str(exc))
                continue
            suffix = Path(name).suffix.lower()
            if suffix not in self.allowed:
                refused.append(f"{name}: type {suffix or '(none)'} is not allowed "
                               f"(allowed: {', '.join(self.allowed)})")
                continue
            size = os.path.getsize(str(tmp))
            if size > self.max_upload_bytes:
                refused.append(f"{name}: {size / 1e6:.1f} MB is over the "
                               f"{self.max_upload_bytes / 1e6:.1f} MB limit")
                continue
            target = (folder / name).resolve()
            if target.parent != folder.resolve():
                refused.append(f"{original!r}: not a plain file name")
                continue
            # copied under a hidden name (ingest skips those), then renamed: a running
            # ingest sees the old file or the whole new one, never half of it
            part = target.with_name(f".{name}.{threading.get_ident()}.part")
            shutil.copyfile(str(tmp), part)
            os.replace(part, target)
            accepted.append(name)
        return accepted, refused

    def start_ingest(self, collection: str | None = None) -> str:
        """Index the collection's upload folder in the background; returns a status line.

        Files uploaded while an ingest runs are queued: it runs again when it ends.
        """
        name = collection or self.bot.collection_name
        if self._enqueue(name, [self.uploads_of(name)]):
            return "Indexing started."
        return "Indexing is running; these files are queued and indexed when it ends."

    def _enqueue(self, name: str, folders: list[Path]) -> bool:
        """Queue a sync of ``folders`` into collection ``name`` (once, however often asked while
        it waits); returns True when this started the one ingest thread."""
        task = (name, tuple(Path(f) for f in folders))
        with self.job.lock:
            if task not in self._pending:
                self._pending.append(task)
            if self.job.running:
                return False
            self.job.running = True
            self.job.started = time.monotonic()
            self.job.message = "Indexing started."
        threading.Thread(target=self._ingest, daemon=True, name="ingest").start()
        return True

    def _ingest(self) -> None:
        """Run the queued syncs (uploads and watched folders), one at a time, until none is left."""
        while True:
            with self.job.lock:
                if not self._pending:
                    self.job.running = False
                    return
                name, folders = self._pending.pop(0)
            self.job.done, self.job.total, self.job.current = 0, 0, ""
            try:
                bot = self.collection(name)
            except SHOWN_ERRORS as exc:  # the collection was deleted meanwhile
                self.job.message = f"Indexing failed: {exc}"
                continue
            self._sync(bot, list(folders))

    def _sync(self, bot: Assistant, folders: list[Path]) -> None:
        def progress(done, total, source):
            self.job.done, self.job.total, self.job.current = done, total, source

        try:
            report = bot.ingest(folders, progress=progress, wait=INGEST_WAIT)
            self.job.message = f"Indexed: {report.summary()}."
        except Exception as exc:  # shown to the user; the index itself is unchanged
            self.job.message = f"Indexing failed: {exc}"

    def watch(self, folders: list[Path], collection: str | None = None, settle: float | None = None):
        """Keep a collection in step with ``folders`` (synced now, then on every settled change)
        through the same queue as uploads, its progress shown like theirs."""
        name = collection or self.bot.collection_name
        bot = self.collection(name)

        def sync(paths):
            existing = [Path(p) for p in paths if Path(p).is_dir()]
            gone = [str(p) for p in paths if not Path(p).is_dir()]
            self.watch_note = (f"Watched folder {', '.join(gone)} is gone: its documents stay indexed until "
                               "it is back." if gone else "")
            if existing:
                self._enqueue(name, existing)

        self.watcher = bot.watch(folders, sync=sync, settle=settle)
        self.watcher.start()
        return self.watcher

    def status(self) -> str:
        if self.job.running:
            line = f"Indexing… {self.job.done} of {self.job.total or '?'} files: {self.job.current}"
        else:
            line = self.job.message
        return f"{line} {self.watch_note}" if self.watch_note else line

    def remove(self, source: str | None, folder: bool = False, collection: str | None = None) -> str:
        """Remove a document as listed (a folder only with ``folder``); returns a status line,
        which the status box keeps showing until the next indexing or removal.

        An uploaded file goes from the upload folder too, so it is not indexed again.
        """
        line = self._remove(source, folder, collection)
        self.job.message = line
        return line

    def _remove(self, source: str | None, folder: bool, collection: str | None) -> str:
        if not source:
            return "Choose a document to remove."
        try:
            removed = self.collection(collection).remove_documents(source, folder=bool(folder))
        except SHOWN_ERRORS as exc:
            return f"Not removed: {exc}"
        uploads = self.uploads_of(collection).resolve()
        for doc in removed:
            path = Path(doc.path)
            if path.parent == uploads and path.exists():
                path.unlink()
        return f"Removed {', '.join(d.source for d in removed)}." if removed else f"{source} is not indexed."

    # answers ------------------------------------------------------------------
    def answer_stream(self, question: str, history: list[dict], k: int, mode: str, backend: str,
                      docs: list[str] | None, collections: list[str] | None = None,
                      conversation: str | None = None, user: str = ""):
        """Yield (partial text, None, notice) while generating, then (final chat text, Answer, notice).

        With ``conversation`` the turn is stored in it (and its stored turns are the history)."""
        notice = self.job.notice()
        bot = self.using(backend)
        names = [c for c in collections or [] if c] or None
        turns = [{"role": m["role"], "content": _message_text(m["content"])} for m in history or []]
        partial = ""
        for item in bot.stream(question, history=turns, k=check_k(k), docs=docs or None, mode=mode,
                               collections=names, conversation=conversation, user=user):
            if isinstance(item, Answer):
                yield chat_text(item, notice), item, notice
            else:
                partial += item
                yield partial, None, notice

    # conversations --------------------------------------------------------------
    def conversation_choices(self, user: str = "") -> list[tuple[str, str]]:
        """(label, id) of the user's conversations, the most recent first."""
        return [(f"{c.title or '(untitled)'} · {datetime.fromtimestamp(c.updated).strftime('%m-%d %H:%M')}", c.id)
                for c in self.bot.conversations(user)]

    def reopen(self, conversation_id: str, user: str = "") -> tuple[list[dict], Answer | None]:
        """A stored conversation as chat messages, and its last answer."""
        conv = self.bot.conversation(conversation_id, user)
        messages = []
        for t in conv.turns:
            messages += [{"role": "user", "content": t.question},
                         {"role": "assistant", "content": chat_text(t.answer)}]
        return messages, conv.turns[-1].answer if conv.turns else None

    def export(self, conversation_id: str, user: str = "") -> Path:
        """The conversation as a Markdown file (citations as footnotes), for download."""
        conv = self.bot.conversation(conversation_id, user)
        folder = Path(tempfile.mkdtemp(prefix="conversation-"))
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", conv.title)[:40].strip("-") or conv.id
        path = folder / f"{name}.md"
        path.write_text(conv.to_markdown(), encoding="utf-8")
        return path

    # the viewer -------------------------------------------------------------------
    def view(self, target: dict | None, zoom: int = 100) -> tuple[str, dict | None]:
        """The viewer's HTML for a target (``citation_target``, or a document with a page), and
        the target with the page shown and the document's page count filled in."""
        if not target:
            return "<p>Choose a source to see it in its document.</p>", target
        try:
            view = self.collection(target.get("collection")).view(
                target["document"], target.get("start"), target.get("end"), target.get("answers") or [],
                target.get("page"), scale=PAGE_SCALE * max(1, zoom / 100))  # sharp when zoomed in
        except SHOWN_ERRORS as exc:
            return f'<p class="note">{html.escape(str(exc))}</p>', target
        if hasattr(view, "image"):
            target = {**target, "page": view.image.page, "pages": view.image.pages}
        return render_view(view, zoom), target

    def has_conversation(self, conversation_id: str, user: str = "") -> bool:
        try:
            self.bot.conversation(conversation_id, user)
        except SHOWN_ERRORS:
            return False
        return True


def _message_text(content) -> str:
    """A chat message's text, whatever shape gradio hands it back in."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # gradio may hand back [{"type": "text", "text": ...}]
        return " ".join(c.get("text", "") for c in content if isinstance(c, dict))
    return "" if content is None else str(content)


