"""``PostgresCatalog``: ``index.catalog.Catalog`` with its tables in PostgreSQL, and the one-writer
rule as an advisory lock, so processes on several machines share one index (docs/deploy.md).

Each collection's catalog is a schema of the database (``index.postgres.schema``). Reads on a
thread share one connection; ``snapshot()`` is a REPEATABLE READ transaction; writes are
transactions that queue on a transaction-scoped advisory lock, as SQLite's ``BEGIN IMMEDIATE``
queues them. A killed writer's transaction is rolled back by the server, and its session-scoped
writer lock is released with its connection.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from index.catalog import Catalog
from index.errors import CatalogUnavailable, CollectionError, IndexBusy
from index.postgres import keywords as postgres_keywords
from index.postgres.connection import connect, redact
from index.postgres.schema import REGISTRY, collection_id, prepare_database, schema_name

log = logging.getLogger(__name__)

LOCK_POLL = 0.2  # seconds between tries for a writer waiting on the advisory lock


class PostgresCatalog(Catalog):
    """The catalog of collection ``name`` in the PostgreSQL database at ``url``.

    Args:
        url: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE``.
        name: the collection; registered (with its tables) on first use unless ``create`` is False.

    Raises:
        CatalogUnavailable: the server cannot be used (the message says why, without the password).
        CatalogVersionMismatch: the database was made by another version of the schema.
        CollectionError: ``create`` is False and no such collection is registered.
    """

    keywords = postgres_keywords
    _BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def __init__(self, url: str, name: str = "default", create: bool = True):
        self.url = url
        self.name = name
        self.path = None
        self._held: AdvisoryLock | None = None  # the writer lock while this process holds it
        self._start_connections()
        db = connect(url)
        try:
            prepare_database(db, redact(url))
            self.id = collection_id(db, name, create)
        finally:
            db.close()
        if self.id is None:
            raise CollectionError(f"no collection {name!r} in the catalog database {redact(url)}")
        self.schema = schema_name(self.id)
        # this catalog's two advisory locks: one for each write transaction, one held by a writer
        digest = hashlib.sha256(self.schema.encode()).digest()
        self._transaction_lock = int.from_bytes(digest[:8], "big", signed=True)
        self._writer_lock = int.from_bytes(digest[8:16], "big", signed=True)
        self._ensure_keyword_index()

    @property
    def where(self) -> str:
        return f"collection {self.name!r} of {redact(self.url)}"

    def vector_collection(self, shared: bool) -> str:
        """Named after the collection's id: every process sharing the catalog finds the same
        vectors, and a renamed collection keeps them."""
        return f"chunks-{self.id}"

    def _connect(self):
        db = connect(self.url, search_path=self.schema)
        db.write_lock = self._transaction_lock
        return db

    def registered_name(self) -> str | None:
        """The name the registry gives this catalog now (None: deleted), as another process may
        have renamed or deleted the collection."""
        row = self._db.execute(f"SELECT name FROM {REGISTRY}.collections WHERE id = ?", (self.id,)).fetchone()
        return row[0] if row else None

    def analyze(self) -> None:
        """Refresh PostgreSQL's statistics of the keyword tables (after a bulk load, so its plans
        fit their size at once rather than after autovacuum's next round)."""
        self._db.execute("ANALYZE keyword_postings")
        self._db.execute("ANALYZE keyword_terms")
        self._db.execute("ANALYZE keyword_rows")

    def _usable(self, db) -> bool:
        return db.usable and not db.conn.broken

    def _write(self):
        """A write transaction; a writer first checks that it still holds the writer lock (its
        connection may have dropped, and the server released the lock with it)."""
        if self._held is not None:
            self._held.check()
        return super()._write()

    def writer_lock(self, timeout: float = 0) -> "AdvisoryLock":
        """The one-writer lock: a session advisory lock on a connection of its own, so it is
        released when this process ends or its connection drops, on whichever machine."""
        lock = AdvisoryLock(self.url, self._writer_lock, self)
        if not lock.acquire(timeout):
            raise IndexBusy(f"another process is writing to the index ({self.where}); wait for it to "
                            "finish (or pass --wait SECONDS to wait for it)")
        self._held = lock
        return lock


class AdvisoryLock:
    """A PostgreSQL session advisory lock held on its own connection until ``release``."""

    def __init__(self, url: str, key: int, owner: PostgresCatalog | None = None):
        self.url, self.key, self.owner = url, key, owner
        self._db = None
        self._mutex = threading.Lock()

    def acquire(self, timeout: float = 0) -> bool:
        """Try for up to ``timeout`` seconds; True when held."""
        self._db = connect(self.url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._db.execute("SELECT pg_try_advisory_lock(?)", (self.key,)).fetchone()[0]:
                    return True
                if time.monotonic() >= deadline:
                    break
                time.sleep(LOCK_POLL)
        except BaseException:
            self._db.close()
            self._db = None
            raise
        self._db.close()
        self._db = None
        return False

    def check(self) -> None:
        """Raise CatalogUnavailable when the lock's connection is gone (the lock with it): another
        writer may have started, so this one must stop before it writes anything more."""
        try:
            self._db.conn.execute("SELECT 1")  # not through the adapter: never reconnected silently
        except Exception:
            raise CatalogUnavailable(f"lost the writer lock's connection to {redact(self.url)}; stopped "
                                     "before writing more: run the command again") from None

    def release(self) -> None:
        with self._mutex:
            db, self._db = self._db, None
        if self.owner is not None and self.owner._held is self:
            self.owner._held = None
        if db is None:
            return
        try:
            db.execute("SELECT pg_advisory_unlock(?)", (self.key,))
        except CatalogUnavailable as exc:  # the connection is gone: the server released the lock with it
            log.warning("%s; the server released the writer lock with it", exc)
        finally:
            db.close()
