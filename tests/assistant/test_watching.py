"""``Assistant.watch``: a collection kept in step with folders through the real sync."""

from __future__ import annotations

import shutil
import time

from assistant import Assistant, Settings
from index.embedding.embedder import HashEmbedder


def _until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_changes_are_synced_and_a_vanished_folder_loses_nothing(tmp_path):
    bot = Assistant(Settings.from_env(env={}, backend="none", index_dir=tmp_path / "idx"), embedder=HashEmbedder())
    kept, other = tmp_path / "kept", tmp_path / "other"
    kept.mkdir(), other.mkdir()
    (kept / "herons.md").write_text("# Herons\n\nGrey herons nest in colonies called heronries.\n")
    (other / "owls.md").write_text("# Owls\n\nSnowy owls hunt lemmings on the tundra.\n")
    events: list[str] = []
    watcher = bot.watch([kept, other], on_event=events.append, settle=0.3)
    watcher.start()
    try:
        def sources():
            return sorted(d.source for d in bot.documents())

        _until(lambda: sources() == ["herons.md", "owls.md"])
        (kept / "bad.pdf").write_bytes(b"%PDF-1.4 broken")  # unreadable: reported, nothing else lost
        (kept / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping.\n")
        _until(lambda: "otters.md" in sources())
        _until(lambda: any("bad.pdf" in e and "failed" in e for e in events))
        before = watcher.syncs
        shutil.rmtree(other)
        _until(lambda: any(f"folder {other} is gone" in e for e in events))
        _until(lambda: watcher.syncs > before and watcher.state == "idle")  # the sync without it ran
        assert "owls.md" in sources(), "a vanished folder's documents stay indexed"
        (kept / "herons.md").unlink()
        _until(lambda: "herons.md" not in sources())
        assert sources() == ["otters.md", "owls.md"]
    finally:
        assert watcher.stop()
