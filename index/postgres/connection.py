"""Connecting to PostgreSQL: the URL shown without its password, errors that say what to do, and a
connection that takes the catalog's SQL as SQLite spells it.

psycopg (``pip install 'doc-assistant[postgres]'``) is imported here only, when a PostgreSQL
catalog is opened: the default install does without it.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import urlsplit, urlunsplit

from index.errors import CatalogUnavailable

CONNECT_TIMEOUT = 10  # seconds to reach the server before giving up with a clear error
SCHEMES = ("postgresql", "postgres")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (what logs, errors and the chat may show)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unreadable URL)"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str) -> str:
    """``url`` when it names a PostgreSQL database; else CatalogUnavailable saying the form."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in SCHEMES or not parts.path.strip("/"):
        raise CatalogUnavailable(f"--catalog-url {redact(url)!s} is not a PostgreSQL database URL; "
                                 "write postgresql://USER@HOST[:PORT]/DATABASE (a password may follow "
                                 "USER after ':', or come from PGPASSWORD or ~/.pgpass)")
    return url


def connect(url: str, search_path: str | None = None):
    """A new autocommit connection (``PostgresConnection``), with ``search_path`` set when given.

    Raises:
        CatalogUnavailable: psycopg missing, the server unreachable, the login refused, no such
            database; the message names the server without the password and says what to do.
    """
    check_url(url)
    try:
        import psycopg
    except ImportError:
        raise CatalogUnavailable("a PostgreSQL catalog needs the psycopg driver: "
                                 "pip install 'doc-assistant[postgres]'") from None
    options = f"-c search_path={search_path}" if search_path else None
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                               application_name="doc-assistant", **({"options": options} if options else {}))
    except psycopg.OperationalError as exc:
        raise CatalogUnavailable(f"cannot use the catalog database {redact(url)}: {_reason(str(exc), url)}") from None
    return PostgresConnection(conn, url)


def _reason(message: str, url: str) -> str:
    """What went wrong, in words a user acts on; never the password."""
    password = urlsplit(url).password
    if password:
        message = message.replace(password, "***")
    text = " ".join(message.split())
    if "password authentication failed" in text or "no password supplied" in text:
        return ("the server refused the login (wrong user or password); check the URL's user, and the "
                "password in the URL, PGPASSWORD or ~/.pgpass")
    if re.search(r"database \S+ does not exist", text):
        return f"{text}; create it first (createdb) or name another database in the URL"
    if "Connection refused" in text or "timeout expired" in text or "could not translate host" in text \
            or "No route to host" in text:
        return f"the server does not answer ({text}); start PostgreSQL or fix the host and port in the URL"
    return text


class PostgresConnection:
    """A psycopg connection that runs the catalog's SQL as written for SQLite.

    The shared SQL uses ``?`` placeholders (psycopg wants ``%s``) and ``BEGIN IMMEDIATE`` for a
    write transaction (here ``BEGIN`` and the catalog's transaction-scoped advisory lock, so
    writers queue as SQLite's do). Everything else in it is SQL both understand.
    """

    def __init__(self, conn, url: str, write_lock: int | None = None):
        self.conn = conn
        self.url = url
        self.write_lock = write_lock

    def execute(self, sql: str, args=()):
        with self._lost():
            return self._execute(sql, args)

    def executemany(self, sql: str, rows) -> None:
        rows = list(rows)
        if rows:
            with self._lost():
                self.conn.cursor().executemany(_placeholders(sql), rows)

    @contextlib.contextmanager
    def _lost(self):
        """A dropped connection as CatalogUnavailable (the server rolled back what was half done)."""
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            raise CatalogUnavailable(f"lost the connection to the catalog database {redact(self.url)} "
                                     f"({_reason(str(exc), self.url)}); nothing half-done was kept: "
                                     "run the command again once the server is back") from None

    def _execute(self, sql: str, args):
        cursor = self.conn.cursor()
        if sql == "BEGIN IMMEDIATE":
            cursor.execute("BEGIN")
            if self.write_lock is not None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self.write_lock,))
            return cursor
        if args:
            cursor.execute(_placeholders(sql), tuple(args))
        else:  # no parameters: sent as it is (several statements may be)
            cursor.execute(sql)
        return cursor

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()


_PLACEHOLDERS: dict[str, str] = {}


def _placeholders(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    out = _PLACEHOLDERS.get(sql)
    if out is None:
        if len(_PLACEHOLDERS) > 2000:
            _PLACEHOLDERS.clear()
        out = _PLACEHOLDERS[sql] = sql.replace("%", "%%").replace("?", "%s")
    return out
