"""Conversations and the ratings of their answers, kept in the data folder (SQLite) or, with a
PostgreSQL catalog, in its database (schema ``doc_assistant``), shared by every server.

One file, DATA/conversations.sqlite3, beside the collections, so a conversation may move between
collections. Each turn keeps the question, the collection(s) asked and the whole ``Answer`` (its
JSON); each rating keeps the answer as it was shown and the version (content hash) of every
document it cites, so ``assistant eval --from-feedback`` can turn it into a test later
(docs/ui.md). Every write is one transaction: a killed server loses at most the turn
it was answering. Conversations belong to a user (the chat's login; "" without one) and are
found only by their owner.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import ConversationNotFound
from assistant.types import Answer, Citation
from index.schema import write_transaction

FILE = "conversations.sqlite3"
TITLE_CHARS = 80  # a new conversation is titled by its first question, cut to this
RATINGS = (1, -1)  # thumbs up, thumbs down
WRITE_LOCK = 0x636F6E76  # "conv": the advisory lock writes take in a PostgreSQL catalog database

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, "user" TEXT NOT NULL, title TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations("user", updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    n INTEGER NOT NULL, question TEXT NOT NULL, collections TEXT NOT NULL,
    answer TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (conversation, n));
CREATE TABLE IF NOT EXISTS ratings (
    conversation TEXT NOT NULL, n INTEGER NOT NULL, "user" TEXT NOT NULL,
    rating INTEGER NOT NULL, correction TEXT, question TEXT NOT NULL, collections TEXT NOT NULL,
    answer TEXT NOT NULL, versions TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (conversation, n));
"""


@dataclass(frozen=True)
class Turn:
    """One question and its answer; ``collections`` are the collections it was asked of."""

    n: int
    question: str
    answer: Answer
    collections: tuple[str, ...]
    created: float


@dataclass(frozen=True)
class Conversation:
    """A stored conversation, with its turns in order."""

    id: str
    user: str
    title: str
    created: float
    updated: float
    turns: tuple[Turn, ...] = ()

    def history(self) -> list[dict]:
        """The turns as role/content messages, as ``Assistant.chat`` takes them."""
        out: list[dict] = []
        for t in self.turns:
            out += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer.answer}]
        return out

    def to_markdown(self) -> str:
        """The conversation as Markdown, each answer's cited passages as footnotes."""
        lines = [f"# {self.title}", ""]
        notes: list[str] = []
        for t in self.turns:
            text = t.answer.answer
            for c in t.answer.cited:
                label = f"{len(notes) + 1}"
                text = text.replace(f"[{c.n}]", f"[^{label}]")
                where = f", page {c.page}" if c.page else ""
                collection = f"{c.collection}: " if c.collection and c.collection != "default" else ""
                quote = " ".join(c.text.split())
                notes.append(f"[^{label}]: {collection}{c.source}{where}: \"{quote}\"")
            lines += [f"**Q:** {t.question}", "", text, ""]
        return "\n".join(lines + notes) + "\n"


@dataclass(frozen=True)
class Rating:
    """A rated answer: +1 or -1, the user's correction, and the versions of the cited documents."""

    conversation: str
    n: int
    user: str
    rating: int
    correction: str | None
    question: str
    collections: tuple[str, ...]
    answer: Answer
    versions: dict = field(default_factory=dict)  # source -> content hash when rated
    created: float = 0.0


class ConversationStore:
    """The conversations file of a data folder, or the conversations in the PostgreSQL catalog
    database at ``catalog_url`` (so a conversation started on one server continues on another);
    safe to use from several threads and processes."""

    def __init__(self, data_dir: Path, catalog_url: str | None = None):
        self.path = Path(data_dir) / FILE
        self.catalog_url = catalog_url
        self._local = threading.local()
        if catalog_url:
            from index.postgres.connection import connect, redact
            from index.postgres.schema import prepare_database

            db = connect(catalog_url)
            try:
                prepare_database(db, redact(catalog_url))
            finally:
                db.close()
            with self._write() as db:  # queued on the lock below: no two servers create tables at once
                db.execute(SCHEMA.replace(" REAL", " DOUBLE PRECISION"))
        else:
            self._db().executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is not None and self.catalog_url and not db.usable:
            db = None  # the server dropped it: a new one
        if db is None:
            if self.catalog_url:
                from index.postgres.connection import connect
                from index.postgres.schema import REGISTRY

                db = connect(self.catalog_url, search_path=REGISTRY)
                db.write_lock = WRITE_LOCK  # writes queue as SQLite's BEGIN IMMEDIATE queues them
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    def _write(self):
        """One write transaction on this thread's connection (rolled back on an exception)."""
        return write_transaction(self._db())

    # conversations ---------------------------------------------------------------
    def create(self, user: str = "", title: str = "") -> Conversation:
        now = time.time()
        conv = Conversation(uuid.uuid4().hex[:12], user or "", title.strip()[:TITLE_CHARS], now, now)
        with self._write() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                       (conv.id, conv.user, conv.title, conv.created, conv.updated))
        return conv

    def list(self, user: str = "") -> list[Conversation]:
        """The user's conversations that hold a turn, the most recent first (without their turns)."""
        rows = self._db().execute('SELECT id, "user", title, created, updated FROM conversations c WHERE "user" = ? '
                                  "AND EXISTS (SELECT 1 FROM turns t WHERE t.conversation = c.id) "
                                  "ORDER BY updated DESC, id", (user or "",)).fetchall()
        return [Conversation(*row) for row in rows]

    def get(self, conversation_id: str, user: str = "") -> Conversation:
        """The conversation with its turns; raises ConversationNotFound (another user's too)."""
        db = self._db()
        row = db.execute('SELECT id, "user", title, created, updated FROM conversations WHERE id = ? AND "user" = ?',
                         (str(conversation_id), user or "")).fetchone()
        if row is None:
            raise ConversationNotFound(f"no conversation {conversation_id!r}; "
                                       "`assistant conversations` lists them")
        turns = db.execute("SELECT n, question, answer, collections, created FROM turns "
                           "WHERE conversation = ? ORDER BY n", (row[0],)).fetchall()
        return Conversation(*row, turns=tuple(Turn(n, q, answer_from_json(a), tuple(json.loads(c)), t)
                                              for n, q, a, c, t in turns))

    def add_turn(self, conversation_id: str, question: str, answer: Answer, collections: list[str],
                 user: str = "") -> Turn:
        """Append a turn (titling an untitled conversation by its first question)."""
        self.get(conversation_id, user)
        now = time.time()
        with self._write() as db:
            n = db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE conversation = ?",
                           (conversation_id,)).fetchone()[0]
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                       (conversation_id, n, question, json.dumps(list(collections)), answer.to_json(), now))
            db.execute("UPDATE conversations SET updated = ?, "
                       "title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                       (now, " ".join(question.split())[:TITLE_CHARS], conversation_id))
        return Turn(n, question, answer, tuple(collections), now)

    def rename(self, conversation_id: str, title: str, user: str = "") -> None:
        title = " ".join((title or "").split())[:TITLE_CHARS]
        if not title:
            raise ValueError("a conversation's title cannot be empty")
        self.get(conversation_id, user)
        with self._write() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete(self, conversation_id: str, user: str = "") -> None:
        """Delete a conversation and its turns (its ratings stay: they are tests now)."""
        self.get(conversation_id, user)
        with self._write() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # ratings --------------------------------------------------------------------
    def rate(self, conversation_id: str, n: int, rating: int, correction: str | None = None,
             versions: dict | None = None, user: str = "") -> Rating:
        """Rate turn ``n`` (+1 or -1), with an optional correction; a new rating replaces the old."""
        if rating not in RATINGS:
            raise ValueError(f"a rating is 1 (good) or -1 (wrong), not {rating!r}")
        conv = self.get(conversation_id, user)
        turn = next((t for t in conv.turns if t.n == n), None)
        if turn is None:
            raise ValueError(f"conversation {conversation_id!r} has no turn {n} (it has {len(conv.turns)})")
        correction = (correction or "").strip() or None
        out = Rating(conversation_id, n, user or "", rating, correction, turn.question, turn.collections,
                     turn.answer, dict(versions or {}), time.time())
        with self._write() as db:
            db.execute("DELETE FROM ratings WHERE conversation = ? AND n = ?", (out.conversation, n))
            db.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (out.conversation, n, out.user, rating, correction, out.question,
                        json.dumps(list(out.collections)), out.answer.to_json(), json.dumps(out.versions),
                        out.created))
        return out

    def ratings(self, user: str | None = None) -> list[Rating]:
        """Every rating (of one user, when given), oldest first."""
        query = "SELECT * FROM ratings" + (' WHERE "user" = ?' if user is not None else "") + " ORDER BY created"
        rows = self._db().execute(query, (user,) if user is not None else ()).fetchall()
        return [Rating(c, n, u, r, corr, q, tuple(json.loads(cols)), answer_from_json(a), json.loads(v), t)
                for c, n, u, r, corr, q, cols, a, v, t in rows]

    def copy_to(self, other: "ConversationStore") -> tuple[int, int]:
        """Copy every conversation (with its turns) and rating into ``other``, keeping those it has.

        Returns:
            The conversations and ratings copied.
        """
        db = self._db()
        tables = {"conversations": ("id",), "turns": ("conversation", "n"), "ratings": ("conversation", "n")}
        copied = {}
        with other._write() as target:
            for table, key in tables.items():
                rows = db.execute(f"SELECT * FROM {table}").fetchall()
                marks = ", ".join("?" * len(rows[0])) if rows else ""
                where = " AND ".join(f"{k} = ?" for k in key)
                count = 0
                for row in rows:
                    if target.execute(f"SELECT 1 FROM {table} WHERE {where}", row[:len(key)]).fetchone():
                        continue
                    target.execute(f"INSERT INTO {table} VALUES ({marks})", row)
                    count += 1
                copied[table] = count
        return copied["conversations"], copied["ratings"]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def answer_from_json(text: str) -> Answer:
    """An ``Answer`` back from its JSON (``Answer.to_json``)."""
    data = json.loads(text)
    citations = [Citation(**c) for c in data.pop("citations")]
    return Answer(citations=citations, **data)
