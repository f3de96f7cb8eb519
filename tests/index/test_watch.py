"""The folder watcher against the real file system and real watchfiles (inotify, and polling);
``sync`` is a fake that records its calls (the real sync is tested in test_ingest.py)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from index.watch import FolderWatcher, counts_as_change

SETTLE = 1.0
QUIET = SETTLE + 1.5  # how long to wait to be sure that no (further) sync comes


class Recorder:
    """A fake ``sync``: records each call; can be slow, or fail its first calls."""

    def __init__(self, delay: float = 0.0, failures: int = 0):
        self.calls: list[tuple[float, float, list[Path]]] = []  # (started, ended, folders)
        self.delay, self.failures = delay, failures

    def __call__(self, folders: list[Path]) -> None:
        started = time.monotonic()
        time.sleep(self.delay)
        self.calls.append((started, time.monotonic(), folders))
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"boom {len(self.calls)}")


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def stays(predicate, seconds: float) -> bool:
    """Whether ``predicate`` holds all along the next ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def watch():
    """``watch(folders, sync, **options)``: a started watcher, its watch up; stopped after the test."""
    started = []

    def make(folders, sync, **options) -> FolderWatcher:
        watcher = FolderWatcher(folders, sync, **{"settle": SETTLE, **options})
        started.append(watcher.start())
        assert wait_until(lambda: watcher.watching, 10), "the watch did not come up"
        return watcher

    yield make
    for watcher in started:
        assert watcher.stop()


@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "docs"
    path.mkdir()
    return path


def test_a_new_document_is_one_sync_of_the_folders(watch, folder):
    sync = Recorder()
    watcher = watch([folder], sync)
    written = time.monotonic()
    (folder / "a.md").write_text("# A\n")
    assert wait_until(lambda: sync.calls, SETTLE + 3)
    assert sync.calls[0][0] - written >= SETTLE - 0.05  # it waited for the change to settle
    assert stays(lambda: len(sync.calls) == 1, QUIET)
    assert sync.calls[0][2] == [folder] and watcher.syncs == 1 and watcher.last_error is None
    assert watcher.state == "idle"


def test_a_burst_of_a_thousand_files_is_one_sync(watch, folder):
    sync = Recorder()
    watch([folder], sync)
    for i in range(1000):
        (folder / f"doc{i:04}.txt").write_text(f"document {i}\n")
    assert wait_until(lambda: sync.calls, SETTLE + 5)
    # exactly one: the loop writes the thousand files in well under a second (SETTLE), so no
    # quiet second falls inside the burst
    assert stays(lambda: len(sync.calls) == 1, QUIET)


def test_ignored_files_are_no_change(watch, folder):
    sync = Recorder()
    watcher = watch([folder], sync)
    (folder / ".hidden.md").write_text("hidden")
    (folder / "x.md.part").write_text("downloading")
    (folder / "x.md~").write_text("backup")
    (folder / "notes.xyz").write_text("unsupported")
    (folder / ".git").mkdir()
    (folder / ".git" / "inside.md").write_text("in a hidden folder")
    assert stays(lambda: not sync.calls, QUIET)
    assert watcher.state == "idle"
    (folder / "x.md.part").rename(folder / "x.md")  # the download done: now it counts
    assert wait_until(lambda: sync.calls, SETTLE + 3)


def test_changes_during_a_slow_sync_make_exactly_one_more(watch, folder):
    sync = Recorder(delay=1.5)
    watcher = watch([folder], sync)
    (folder / "a.md").write_text("a")
    assert wait_until(lambda: watcher.state == "syncing", SETTLE + 3)
    for name in ("b.md", "c.md", "d.html"):
        (folder / name).write_text(name)
    assert wait_until(lambda: len(sync.calls) == 2, 1.5 + SETTLE + 5)
    assert sync.calls[1][0] >= sync.calls[0][1]  # one at a time
    assert stays(lambda: len(sync.calls) == 2, QUIET)


def test_a_failing_sync_does_not_stop_the_watcher(watch, folder):
    sync, events = Recorder(failures=1), []
    watcher = watch([folder], sync, on_event=events.append)
    (folder / "a.md").write_text("a")
    assert wait_until(lambda: watcher.syncs == 1, SETTLE + 3)
    assert "boom 1" in watcher.last_error
    assert any(e.startswith("sync failed") and "boom 1" in e for e in events)
    (folder / "b.md").write_text("b")
    assert wait_until(lambda: watcher.syncs == 2, SETTLE + 3)
    assert watcher.running and "boom 1" in watcher.last_error  # the last failure is kept


def test_a_vanished_folder_is_synced_reported_and_watched_again(watch, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for path in (one, two):
        (path / "sub").mkdir(parents=True)
        (path / "sub" / "x.md").write_text("x")
    sync, events = Recorder(), []
    watcher = watch([one, two], sync, on_event=events.append)
    shutil.rmtree(one)
    assert wait_until(lambda: sync.calls, SETTLE + 4)
    assert sync.calls[0][2] == [one, two]  # all the folders: the caller removes the vanished one's documents
    assert any(str(one) in e and "gone" in e for e in events)
    assert wait_until(lambda: watcher.watching == [two], 3)
    (two / "y.md").write_text("y")
    assert wait_until(lambda: len(sync.calls) == 2, SETTLE + 3)
    one.mkdir()  # back: watched again, and its coming back is a change
    assert wait_until(lambda: len(sync.calls) == 3 and watcher.watching == [one, two], SETTLE + 5)
    assert any(str(one) in e and "back" in e for e in events)
    (one / "z.md").write_text("z")
    assert wait_until(lambda: len(sync.calls) == 4, SETTLE + 3)


def test_polling_works_too(watch, folder):
    sync = Recorder()
    watch([folder], sync, poll=True)
    (folder / "a.pdf").write_bytes(b"%PDF-1.4")
    assert wait_until(lambda: sync.calls, SETTLE + 3)
    assert stays(lambda: len(sync.calls) == 1, QUIET)


def test_without_inotify_it_falls_back_to_polling(watch, folder, monkeypatch):
    import watchfiles

    real, asked = watchfiles.watch, []

    def no_inotify(*paths, force_polling=None, **options):
        asked.append(force_polling)
        if not force_polling:
            raise OSError("OS file watch limit reached. about [...]")
        return real(*paths, force_polling=force_polling, **options)

    monkeypatch.setattr(watchfiles, "watch", no_inotify)
    sync, events = Recorder(), []
    watch([folder], sync, on_event=events.append)
    assert asked[:2] == [None, True]
    assert any("polling" in e for e in events)
    (folder / "a.md").write_text("a")
    assert wait_until(lambda: sync.calls, SETTLE + 3)


def test_sync_now_and_stop(folder):
    sync = Recorder()
    with FolderWatcher([folder], sync, settle=SETTLE) as watcher:
        watcher.sync_now()
        assert wait_until(lambda: sync.calls, 2)
        assert wait_until(lambda: watcher.watching, 10)
        stopping = time.monotonic()
        assert watcher.stop()
        assert time.monotonic() - stopping < 5
    assert not watcher.running
    assert not [t for t in threading.enumerate() if t.name in ("folder-watch", "folder-sync")]


def test_a_missing_folder_is_reported_at_the_start_and_watched_once_it_appears(tmp_path):
    later, events, sync = tmp_path / "later", [], Recorder()
    watcher = FolderWatcher([later], sync, settle=SETTLE, on_event=events.append).start()
    try:
        assert wait_until(lambda: any(str(later) in e and "does not exist" in e for e in events), 5)
        later.mkdir()
        assert wait_until(lambda: watcher.watching == [later], 5)
        assert wait_until(lambda: sync.calls, SETTLE + 3)
    finally:
        assert watcher.stop()


@pytest.mark.parametrize("deleted, added, name, expected", [
    (False, True, "a.md", True),
    (False, False, "a.DOCX", True),
    (False, True, "a.xyz", False),
    (True, False, "a.xyz", True),  # anything deleted: perhaps a folder of documents
    (True, False, ".a.md", False),
    (False, True, "a.md.part", False),
    (False, True, "a.md~", False),
    (False, True, ".cache/a.md", False),
])
def test_which_changes_count(tmp_path, deleted, added, name, expected):
    assert counts_as_change(deleted, added, tmp_path / name, [tmp_path]) is expected


def test_a_folder_moved_in_counts(tmp_path):
    (tmp_path / "moved").mkdir()
    assert counts_as_change(False, True, tmp_path / "moved", [tmp_path])
