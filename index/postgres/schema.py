"""The catalog database's tables: its own (the schema version, the collections' names) in schema
``doc_assistant``, and each collection's catalog in a schema of its own, ``ix_<id>``.

The version is checked whenever a process opens the database: two versions of the assistant
never write one database with different layouts (docs/deploy.md).
"""

from __future__ import annotations

import time
import uuid

from index.errors import CatalogVersionMismatch, CollectionError
from index.schema import SCHEMA
from index.postgres.connection import WRITE

SCHEMA_VERSION = 1  # the layout below; a database recording another is refused
REGISTRY = "doc_assistant"
# one lock for creating schemas and tables: PostgreSQL's CREATE ... IF NOT EXISTS is not safe
# against another process running the same statement at the same moment
SETUP_LOCK = 0x646F6361  # "doca"

DATABASE_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {REGISTRY};
CREATE TABLE IF NOT EXISTS {REGISTRY}.info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {REGISTRY}.collections (
    name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, created DOUBLE PRECISION NOT NULL);
"""

# index.schema.SCHEMA in PostgreSQL's types (offsets and sizes may pass 2**31; REAL is 4 bytes
# there), the columns SQLite catalogs gained later, and the keyword index (index.postgres.keywords)
CATALOG_SCHEMA = SCHEMA.replace(" INTEGER", " BIGINT").replace(" REAL", " DOUBLE PRECISION") + """
ALTER TABLE documents ADD COLUMN IF NOT EXISTS author TEXT;
ALTER TABLE documents ADD COLUMN IF NOT EXISTS date TEXT;
CREATE TABLE IF NOT EXISTS keyword_rows (
    row BIGSERIAL PRIMARY KEY,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    length INTEGER NOT NULL,
    terms TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS keyword_rows_doc ON keyword_rows (doc_id);
CREATE TABLE IF NOT EXISTS keyword_postings (
    term TEXT NOT NULL,
    row BIGINT NOT NULL,
    tf INTEGER NOT NULL,
    length INTEGER NOT NULL,
    PRIMARY KEY (term, row)
);
CREATE INDEX IF NOT EXISTS keyword_postings_row ON keyword_postings (row);
CREATE TABLE IF NOT EXISTS keyword_terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS keyword_terms_df ON keyword_terms (df DESC);
"""


def prepare_database(db, where: str) -> None:
    """Check the schema version, creating the registry first when the database has none (once per
    database and process: later calls only read the version, so a role without CREATE works
    once the tables exist).

    Raises:
        CatalogVersionMismatch: the database was made by another version of the schema.
    """
    row = None
    if db.execute(f"SELECT to_regclass('{REGISTRY}.collections')").fetchone()[0] is not None:
        row = db.execute(f"SELECT value FROM {REGISTRY}.info WHERE key = 'schema_version'").fetchone()
    if row is None:
        db.execute(WRITE)
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", (SETUP_LOCK,))
            db.execute(DATABASE_SCHEMA)
            row = db.execute(f"SELECT value FROM {REGISTRY}.info WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute(f"INSERT INTO {REGISTRY}.info VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                row = (str(SCHEMA_VERSION),)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    if row[0] != str(SCHEMA_VERSION):
        raise CatalogVersionMismatch(
            f"the catalog database {where} has schema version {row[0]}, made by another version of the "
            f"assistant; this one uses version {SCHEMA_VERSION}. Run the same version on every server, "
            "or give this one a new database and copy the index there with `assistant migrate`")


def collection_id(db, name: str, create: bool) -> str | None:
    """The id of collection ``name`` (its schema is ``ix_<id>``): None when it is not registered,
    unless ``create`` registers it (with its tables)."""
    row = db.execute(f"SELECT id FROM {REGISTRY}.collections WHERE name = ?", (name,)).fetchone()
    if row is not None or not create:
        return row[0] if row else None
    db.execute(WRITE)
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (SETUP_LOCK,))
        row = db.execute(f"SELECT id FROM {REGISTRY}.collections WHERE name = ?", (name,)).fetchone()
        ident = row[0] if row else uuid.uuid4().hex[:16]
        if row is None:
            db.execute(f"INSERT INTO {REGISTRY}.collections VALUES (?, ?, ?)", (name, ident, time.time()))
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_name(ident)}")
        db.execute(f"SET LOCAL search_path TO {schema_name(ident)}")
        db.execute(CATALOG_SCHEMA)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return ident


def schema_name(ident: str) -> str:
    """The schema holding a collection's catalog (ids are hex: safe in SQL as they are)."""
    if not ident.isalnum():
        raise CollectionError(f"collection id {ident!r} is not what this assistant writes")
    return f"ix_{ident}"
