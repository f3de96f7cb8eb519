"""The collections of a PostgreSQL catalog: named in the registry (``index.postgres.schema``),
each its own schema. The same methods as ``index.collections.Collections``; a collection's local
folder (DATA/collections/NAME) holds only what stays per machine (Chroma files when no Chroma
server is used)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from index.collections import DEFAULT, Collections, check_name
from index.errors import CollectionError
from index.postgres.connection import WRITE, connect, redact
from index.postgres.schema import REGISTRY, SETUP_LOCK, collection_id, prepare_database, schema_name


def open_collections(data_dir: Path, default_dir: Path | None = None, catalog_url: str | None = None) -> Collections:
    """The collections of a data folder (``index.collections.Collections``), or those registered
    in the PostgreSQL catalog at ``catalog_url``."""
    if catalog_url:
        return PostgresCollections(catalog_url, data_dir, default_dir)
    return Collections(data_dir, default_dir)


class PostgresCollections(Collections):
    """The collections registered in the catalog database at ``url``.

    Args:
        url: the catalog database.
        data_dir, default_dir: the local folders, as for ``Collections``.
    """

    def __init__(self, url: str, data_dir: Path, default_dir: Path | None = None):
        super().__init__(data_dir, default_dir)
        self.url = url
        self._local = threading.local()

    def _db(self):
        """This thread's connection to the registry (kept: the chat lists collections often)."""
        db = getattr(self._local, "db", None)
        if db is None or not db.usable:
            db = connect(self.url)
            try:
                prepare_database(db, redact(self.url))
            except BaseException:
                db.close()
                raise
            self._local.db = db
        return db

    def names(self) -> list[str]:
        rows = self._db().execute(f"SELECT name FROM {REGISTRY}.collections ORDER BY name").fetchall()
        return [DEFAULT] + [n for (n,) in rows if n != DEFAULT]

    def exists(self, name: str) -> bool:
        check_name(name)
        return name == DEFAULT or name in self.names()

    def create(self, name: str) -> Path:
        check_name(name)
        if self.exists(name):
            raise CollectionError(f"collection {name!r} exists already")
        collection_id(self._db(), name, create=True)
        return self.path(name)

    def rename(self, old: str, new: str) -> Path:
        """Rename a collection: its catalog and vectors keep their id, so nothing moves."""
        self.require(old)
        check_name(new)
        if DEFAULT in (old, new):
            raise CollectionError("the default collection cannot be renamed, nor a collection renamed to it")
        db = self._db()
        db.execute(WRITE)
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", (SETUP_LOCK,))
            if db.execute(f"SELECT 1 FROM {REGISTRY}.collections WHERE name = ?", (new,)).fetchone():
                raise CollectionError(f"collection {new!r} exists already")
            db.execute(f"UPDATE {REGISTRY}.collections SET name = ? WHERE name = ?", (new, old))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        source, target = Collections.path(self, old), Collections.path(self, new)
        if source.is_dir() and not target.exists():
            source.rename(target)
        return target

    def delete(self, name: str) -> None:
        """Delete a collection's catalog (one transaction) and its local folder."""
        self.require(name)
        if name == DEFAULT:
            raise CollectionError("the default collection cannot be deleted; remove its documents instead")
        db = self._db()
        db.execute(WRITE)
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", (SETUP_LOCK,))
            ident = collection_id(db, name, create=False)
            if ident is not None:
                db.execute(f"DROP SCHEMA IF EXISTS {schema_name(ident)} CASCADE")
                db.execute(f"DELETE FROM {REGISTRY}.collections WHERE name = ?", (name,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        shutil.rmtree(self.path(name), ignore_errors=True)
