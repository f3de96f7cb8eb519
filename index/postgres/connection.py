"""Connecting to PostgreSQL: the URL shown without its password, errors that say what to do, and a
connection that takes the catalog's SQL as SQLite spells it.

psycopg (``pip install 'doc-assistant[postgres]'``) is imported here only, when a PostgreSQL
catalog is opened: the default install does without it.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from index.errors import CatalogUnavailable

CONNECT_TIMEOUT = 10  # seconds to reach the server before giving up with a clear error
# TCP keepalives: a connection (and the writer lock it holds) whose peer vanished is noticed in
# about a minute, not after the system's default two hours
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
SCHEMES = ("postgresql", "postgres")
SECRET_PARAMETERS = ("password", "sslpassword")
WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"  # every write transaction, whatever the server's default


def redact(url: str) -> str:
    """``url`` with any password (in the user part or the query) replaced by ``***``: what logs,
    errors and the chat may show."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, hosts = netloc.rpartition("@")
            if ":" in user:
                user = user.split(":", 1)[0] + ":***"
            netloc = f"{user}@{hosts}"
        query = urlencode([(k, "***" if k in SECRET_PARAMETERS else v) for k, v in parse_qsl(parts.query)],
                          safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "postgresql://(unreadable URL)"


def _secrets(url: str) -> list[str]:
    """The passwords ``url`` holds, to blank out of any message."""
    try:
        parts = urlsplit(url)
        found = [parts.password] + [v for k, v in parse_qsl(parts.query) if k in SECRET_PARAMETERS]
    except ValueError:
        return []
    return [s for s in found if s]


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
            database, a URL libpq cannot read; the message names the server without the password
            and says what to do.
    """
    check_url(url)
    conn = PostgresConnection(url, search_path)
    conn.open()
    return conn


def _clean(message: str, url: str) -> str:
    """A driver's message on one line, any password of ``url`` blanked out."""
    for secret in _secrets(url):
        message = message.replace(secret, "***")
    return " ".join(message.split())


def _reason(message: str, url: str) -> str:
    """What went wrong, in words a user acts on; never the password."""
    text = _clean(message, url)
    if "password authentication failed" in text or "no password supplied" in text:
        return ("the server refused the login (wrong user or password); check the URL's user, and the "
                "password in the URL, PGPASSWORD or ~/.pgpass")
    if any(sign in text for sign in ("shutting down", "starting up", "in recovery mode",
                                      "closed the connection unexpectedly", "administrator command")):
        return f"the server is restarting or stopped ({text}); run the command again once it is back"
    if re.search(r"database \S+ does not exist", text):
        return f"{text}; create it first (createdb) or name another database in the URL"
    if "Connection refused" in text or "timeout expired" in text or "could not translate host" in text \
            or "No route to host" in text:
        return f"the server does not answer ({text}); start PostgreSQL or fix the host and port in the URL"
    return text


class PostgresConnection:
    """A psycopg connection that runs the catalog's SQL as written for SQLite.

    The shared SQL uses ``?`` placeholders (psycopg wants ``%s``) and ``BEGIN IMMEDIATE`` for a
    write transaction (here a READ COMMITTED transaction that first takes the owner's
    transaction-scoped advisory lock, so writers queue as SQLite's do). Everything else in it is
    SQL both understand. A statement outside a transaction that finds the connection dropped (a
    server restart) is sent once more on a new connection; inside one it fails with
    CatalogUnavailable, the server having rolled the transaction back.
    """

    def __init__(self, url: str, search_path: str | None = None, write_lock: int | None = None):
        self.url = url
        self.search_path = search_path
        self.write_lock = write_lock
        self.conn = None

    def open(self) -> None:
        try:
            import psycopg
        except ImportError:
            raise CatalogUnavailable("a PostgreSQL catalog needs the psycopg driver: "
                                     "pip install 'doc-assistant[postgres]'") from None
        options = {"options": f"-c search_path={self.search_path}"} if self.search_path else {}
        try:
            self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                        application_name="doc-assistant", **KEEPALIVES, **options)
        except psycopg.Error as exc:  # OperationalError, or a URL libpq cannot parse (which quotes it)
            raise CatalogUnavailable(f"cannot use the catalog database {redact(self.url)}: "
                                     f"{_reason(str(exc), self.url)}") from None

    def execute(self, sql: str, args=()):
        idle = not self.in_transaction  # nothing begun: safe to send again after a reconnect
        with self._errors():
            try:
                return self._execute(sql, args)
            except Exception:
                if not (idle and self.conn.broken):
                    raise
        self.open()  # the server dropped the connection between statements: once more, on a new one
        with self._errors():
            return self._execute(sql, args)

    def _execute(self, sql: str, args):
        cursor = self.conn.cursor()
        if sql == "BEGIN IMMEDIATE":
            cursor.execute(WRITE)
            if self.write_lock is not None:
                try:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self.write_lock,))
                except BaseException:
                    if not self.conn.broken:
                        self.conn.execute("ROLLBACK")  # never leave the connection in a failed transaction
                    raise
            return cursor
        if args:
            cursor.execute(_placeholders(sql), tuple(args))
        else:  # no parameters: sent as it is (several statements may be)
            cursor.execute(sql)
        return cursor

    def executemany(self, sql: str, rows) -> None:
        rows = list(rows)
        if rows:
            with self._errors():
                self.conn.cursor().executemany(_placeholders(sql), rows)

    @contextlib.contextmanager
    def _errors(self):
        """psycopg's operational errors as CatalogUnavailable, in words, without the password."""
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            if self.conn.broken:
                raise CatalogUnavailable(f"lost the connection to the catalog database {redact(self.url)} "
                                         f"({_clean(str(exc), self.url)}); nothing half-done was kept: "
                                         "run the command again once the server is back") from None
            raise CatalogUnavailable(f"the catalog database {redact(self.url)} refused a statement "
                                     f"({exc.sqlstate or 'no code'}: {_reason(str(exc), self.url)}); "
                                     "nothing half-done was kept") from None

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.conn.info.transaction_status != TransactionStatus.IDLE

    @property
    def usable(self) -> bool:
        """Open, and not left inside a failed transaction (one is rolled back here)."""
        from psycopg.pq import TransactionStatus

        if self.conn is None or self.conn.closed:
            return False
        if self.conn.info.transaction_status == TransactionStatus.INERROR:
            try:
                self.conn.execute("ROLLBACK")
            except Exception:
                return False
        return True

    def close(self) -> None:
        if self.conn is not None:
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
