"""Folders kept in step with their collection: watch the folders, call ``sync`` once things settle.

Why: re-reading a folder is the sync's job (``index.ingest`` skips unchanged files, removes vanished
ones); this module only decides *when* to call it. Saving a file, unpacking an archive or copying
a thousand documents is one burst of changes and must cost one sync, not one per file, and nothing
that happens to the folders (a folder deleted, a sync that fails, no inotify watches left) may stop
the watching.

``FolderWatcher`` runs two daemon threads: one watches (``watchfiles``: inotify, or polling), the
other waits until no change has come for ``settle`` seconds and then calls ``sync``, one call at a
time. Changes that come while ``sync`` runs lead to exactly one more call after it.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from pathlib import Path
from typing import Callable

from index.readers import SUPPORTED_SUFFIXES

__all__ = ["FolderWatcher", "SETTLE_SECONDS"]

log = logging.getLogger(__name__)

SETTLE_SECONDS = 1.0  # quiet time after the last change before syncing: long enough that a copy of
#                       many files is one sync, short enough that a saved file is searchable at once
CHECK_SECONDS = 1.0  # how often the watch thread looks for watched folders that vanished or came back
IGNORED_ENDINGS = (".part", "~")  # files being downloaded, editors' backups


class FolderWatcher:
    """Calls ``sync(folders)`` once per settled burst of changes to documents under ``folders``.

    Args:
        folders: the folders to watch, each with everything below it. One may be missing at the
            start or vanish later: it is reported through ``on_event`` and watched again when it
            comes back.
        sync: called with ALL the configured folders, existing or not (the caller decides what a
            missing folder means: normally that its documents are removed), on the watcher's own
            thread, never twice at once. Its return value is ignored; an exception it raises is
            logged, kept in ``last_error``, reported, and the next change calls it again.
        settle: seconds without a change before ``sync`` runs (each change restarts the wait).
        poll: True: poll the folders (network drives, some containers); False: file system
            notifications (inotify) only; None: notifications, or polling where they cannot be set
            up (inotify's watch limit reached) or where ``WATCHFILES_FORCE_POLLING`` asks for it.
        on_event: told, in one line of plain text, what a user should know: a folder gone or back,
            a sync that failed, polling instead of notifications. Called on the watcher's threads.

    Changes that count: a file added or changed whose suffix is one ``index.readers`` reads, a
    folder added (moved in), anything deleted or moved out. Hidden files and folders (a name
    starting with "."), and names ending in ".part" or "~" never count.

    ``watching`` (the folders under watch now: empty until the watch is up, within
    ``CHECK_SECONDS`` of ``start``), ``syncs`` (calls made, failed ones included), ``last_error``
    (the most recent failure, kept after later successes; None if none failed) and ``state``
    ("idle", "waiting": changes seen, settling; "syncing") say where it is. Changes seen but not yet synced when ``stop`` is called
    are dropped: call ``sync_now`` after ``start`` to catch up with what happened meanwhile.
    """

    def __init__(self, folders: list[Path], sync: Callable[[list[Path]], object], settle: float = SETTLE_SECONDS,
                 poll: bool | None = None, on_event: Callable[[str], None] | None = None):
        if settle < 0:
            raise ValueError(f"settle must be zero or more seconds, not {settle}")
        self.folders = [Path(folder) for folder in folders]
        self.settle = settle
        self.syncs = 0
        self.last_error: str | None = None
        self._sync = sync
        self._poll = poll
        self._on_event = on_event
        self._state = "idle"
        self._due: float | None = None  # time.monotonic() when the next sync is due; None: none is
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._missed = False  # the watch was down (an error): changes may have been missed
        self._watch_error: str | None = None  # the last error reported, not to repeat it every second
        self._threads: list[threading.Thread] = []
        self.watching: list[Path] = []  # the folders under watch now (set once the watch is up)

    # ------------------------------------------------------------------ public
    @property
    def state(self) -> str:
        """"idle", "waiting" (changes seen, settling) or "syncing"."""
        return self._state

    @property
    def running(self) -> bool:
        """Whether the watcher's threads are alive."""
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> FolderWatcher:
        """Start watching in daemon threads; returns at once."""
        if self.running:
            raise RuntimeError("this folder watcher is already running")
        self._stop.clear()
        self._threads = [threading.Thread(target=self._watch_loop, name="folder-watch", daemon=True),
                         threading.Thread(target=self._sync_loop, name="folder-sync", daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop watching and wait up to ``timeout`` seconds (a running sync is not interrupted) for
        the threads to end; True if they did."""
        with self._cond:
            self._stop.set()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads if t is not threading.current_thread())

    def run(self) -> None:
        """Watch until ``stop`` is called from another thread, or Ctrl-C (for a CLI command)."""
        if not self.running:
            self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("folder watcher interrupted")
        finally:
            self.stop()

    def sync_now(self) -> None:
        """Sync without waiting for a change (at start-up, say): at once, or right after the sync
        now running. Runs once the watcher is started."""
        self._changed(delay=0.0)

    def __enter__(self) -> FolderWatcher:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------ settling and syncing
    def _changed(self, delay: float | None = None) -> None:
        """A change: the sync is due ``delay`` (default: ``settle``) seconds from now."""
        with self._cond:
            self._due = time.monotonic() + (self.settle if delay is None else delay)
            if self._state != "syncing":
                self._state = "waiting"
            self._cond.notify_all()

    def _sync_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop.is_set():
                    if self._due is None:
                        self._cond.wait()
                    elif self._due > time.monotonic():
                        self._cond.wait(self._due - time.monotonic())
                    else:
                        break
                if self._stop.is_set():
                    return
                self._due = None
                self._state = "syncing"
            self._sync_once()
            with self._cond:
                self._state = "idle" if self._due is None else "waiting"

    def _sync_once(self) -> None:
        try:
            self._sync(list(self.folders))
        except Exception as exc:  # noqa: BLE001 - a failed sync must never end the watching
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("sync of %s failed", ", ".join(map(str, self.folders)))
            self._tell(f"sync failed: {self.last_error}; the next change tries again", logged=True)
        finally:
            self.syncs += 1

    # ------------------------------------------------------------------ watching
    def _watch_loop(self) -> None:
        present = self._look(None)
        polling = self._poll is True
        while not self._stop.is_set():
            roots = [folder for folder in self.folders if folder in present]
            if not roots:
                self._stop.wait(CHECK_SECONDS)
                present = self._look(present)
                continue
            try:
                present = self._watch(roots, present, polling)
            except Exception as exc:  # noqa: BLE001 - the watching must outlive any error
                self._missed = True
                if self._poll is None and not polling and _notifications_exhausted(exc):
                    polling = True
                    self._tell(f"file notifications unavailable ({exc}); polling the folders instead")
                elif isinstance(exc, FileNotFoundError):  # a folder vanished meanwhile: _look tells
                    self._stop.wait(0.1)
                else:
                    if str(exc) != self._watch_error:
                        self._watch_error = str(exc)
                        self._tell(f"watching the folders failed ({exc}); trying again every {CHECK_SECONDS:g} s")
                    self._stop.wait(CHECK_SECONDS)
                present = self._look(present)

    def _watch(self, roots: list[Path], present: dict, polling: bool) -> dict:
        """Watch ``roots`` until a watched folder vanishes, comes back or is replaced (returns the
        folders present then) or until stopped."""
        import watchfiles

        absolute = [root.absolute() for root in roots]
        deleted, added = watchfiles.Change.deleted, watchfiles.Change.added

        def keep(change, path: str) -> bool:
            return counts_as_change(change == deleted, change == added, Path(path), absolute)

        batches = watchfiles.watch(
            *absolute, watch_filter=keep,
            debounce=int(CHECK_SECONDS * 1000), rust_timeout=int(CHECK_SECONDS * 1000), yield_on_timeout=True,
            stop_event=self._stop, raise_interrupt=False, force_polling=True if polling else self._poll)
        try:
            for changes in batches:  # a set of changes, or an empty one every CHECK_SECONDS
                self.watching, self._watch_error = roots, None
                if changes or self._missed:
                    self._missed = False
                    self._changed()
                now = self._look(present)
                if now != present:
                    return now
        finally:
            self.watching = []
            batches.close()
        return present

    def _look(self, before: dict | None) -> dict[Path, tuple[int, int]]:
        """The configured folders that exist now, each with its identity (device, inode); tells of
        those gone or back since ``before`` (None: at the start) and counts that as a change."""
        now = {}
        for folder in self.folders:
            try:
                info = folder.stat()
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                now[folder] = (info.st_dev, info.st_ino)
        for folder in dict.fromkeys(self.folders):
            if before is None and folder not in now:
                self._tell(f"folder {folder} does not exist; it is watched once it appears")
            elif before is not None and folder in before and folder not in now:
                self._tell(f"folder {folder} is gone; watching the others, and it again when it is back")
            elif before is not None and folder in now and folder not in before:
                self._tell(f"folder {folder} is back; watching it again")
            elif before is not None and before.get(folder) != now.get(folder):
                log.info("folder %s was replaced; watching the new one", folder)
        if before is not None and now != before:
            self._changed()
        return now

    def _tell(self, message: str, logged: bool = False) -> None:
        """Log ``message`` as a warning (unless ``logged`` already) and pass it to ``on_event``."""
        if not logged:
            log.warning("%s", message)
        if self._on_event is not None:
            try:
                self._on_event(message)
            except Exception:  # noqa: BLE001 - a broken callback must not end the watching
                log.exception("on_event callback failed")


def counts_as_change(deleted: bool, added: bool, path: Path, roots: list[Path]) -> bool:
    """Whether a change to ``path`` (under one of ``roots``) may change what the sync finds."""
    inside = next((path.relative_to(root) for root in roots if path.is_relative_to(root)), Path(path.name))
    if any(part.startswith(".") for part in inside.parts) or path.name.endswith(IGNORED_ENDINGS):
        return False
    if deleted:  # a document, or a folder of them, gone (or moved out)
        return True
    return path.suffix.lower() in SUPPORTED_SUFFIXES or (added and path.is_dir())


def _notifications_exhausted(exc: Exception) -> bool:
    """Whether ``exc`` says file notifications cannot be set up here (so polling may work)."""
    text = str(exc).lower()
    return (isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError))) or \
        "watch limit" in text or "inotify" in text
