"""The bundled LLM as it is loaded: re-quantised once to Q8_0, cached, and still the same model."""

from __future__ import annotations

import pytest

from assistant.llm.bundled import BundledLLM
from assistant.llm.gguf import bundled_model_path, prepared_model_path
from tests.support.concurrency import at_once

pytestmark = pytest.mark.slow


def test_q8_copy_is_made_once_and_cached(tmp_path):
    src = bundled_model_path()
    path = prepared_model_path(src, tmp_path)
    assert path.name == "SmolLM2-135M-Instruct.Q8_0.gguf" and path.parent.parent == tmp_path
    assert path.stat().st_size > src.stat().st_size  # 8-bit weights: larger than 4-bit
    made = path.stat().st_mtime_ns
    assert prepared_model_path(src, tmp_path) == path and path.stat().st_mtime_ns == made
    assert not list(tmp_path.rglob("*.part"))


def test_q8_copy_answers_like_the_shipped_file(tmp_path):
    messages = [{"role": "user", "content": "Reply with one word: what colour is the sky on a clear day?"}]
    q8 = "".join(BundledLLM(path=prepared_model_path(bundled_model_path(), tmp_path)).stream(messages, 24))
    q4 = "".join(BundledLLM(path=bundled_model_path()).stream(messages, 24))
    assert "blue" in q8.lower() and "blue" in q4.lower(), (q8, q4)


def test_without_a_writable_cache_the_shipped_file_is_used(tmp_path):
    src = bundled_model_path()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert prepared_model_path(src, blocked) == src


def test_other_model_files_are_used_as_they_are(tmp_path):
    other = tmp_path / "model.Q8_0.gguf"
    other.write_bytes(b"GGUF")
    assert prepared_model_path(other, tmp_path / "cache") == other


def test_threads_preparing_the_copy_at_once_all_get_it(tmp_path):
    src = bundled_model_path()
    paths = at_once(lambda: prepared_model_path(src, tmp_path), threads=2)
    assert paths[0] == paths[1] != src and paths[0].is_file(), paths
    assert not list(tmp_path.rglob("*.part"))


def test_sessions_asking_at_once_share_one_model(tmp_path, fake_embedder):
    """Two chat sessions' first questions (or the warm-up and a question) load the model once."""
    from assistant import Assistant, Settings

    bot = Assistant(Settings.from_env(index_dir=tmp_path / "index", backend="bundled"), embedder=fake_embedder)
    models = at_once(lambda: bot.llm, threads=3)
    assert all(m is models[0] for m in models) and isinstance(models[0], BundledLLM), models
