"""The bundled embedder on both runtimes: the int8 ONNX default agrees with torch, loads lazily, caches its export."""

from __future__ import annotations

import pytest

from index.chunking import chunk_text
from tests.conftest import SEEDS

pytestmark = pytest.mark.slow


def _seed_chunks(embedder) -> list[str]:
    text = (SEEDS / "mss-joins-wechat.txt").read_text()
    return [text[s.start:s.end] for s in chunk_text(text, 200, 30, fits=embedder.fits)]


def test_onnx_int8_agrees_with_torch(embedder):
    import numpy as np

    from index.embedder import Embedder

    assert embedder.runtime == "onnx"
    texts = _seed_chunks(embedder) + ["Which platform did the ministry join?", "x"]
    onnx = np.array(embedder.embed(texts))
    torch = np.array(Embedder().embed(texts))
    assert onnx.shape == torch.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-3)
    cosines = (onnx * torch).sum(axis=1)
    assert cosines.mean() > 0.99 and cosines.min() > 0.97, cosines  # one-letter text: the lowest
    # batching by length must not change a text's vector
    alone = np.array(embedder.embed([texts[3]]))[0]
    assert float(alone @ onnx[3]) > 0.9999


def test_both_runtimes_count_the_same_word_pieces(embedder):
    from index.embedder import Embedder

    torch = Embedder()
    for text in _seed_chunks(embedder)[:5] + ["naïve café — 微信 " * 40]:
        assert embedder.count_tokens(text) == torch.count_tokens(text)
    assert embedder.max_tokens == torch.max_tokens == 254


def test_counting_tokens_loads_no_model(tmp_path):
    from index.embedder import OnnxEmbedder

    fresh = OnnxEmbedder(cache_dir=tmp_path / "never-built")
    assert fresh.fits("a short sentence") and fresh.dim == 384
    assert not fresh.loaded and not (tmp_path / "never-built").exists()


def test_export_is_cached_and_rebuilt_when_missing(tmp_path, embedder):
    from index.embedder import OnnxEmbedder

    built = OnnxEmbedder(cache_dir=tmp_path / "models")
    path = built.prepare()
    stamp = path.stat().st_mtime_ns
    assert built.prepare() == path and path.stat().st_mtime_ns == stamp
    assert list(path.parent.iterdir()) == [path]  # no temporary files left
    import numpy as np

    same = np.array(built.embed(["the ministry joined WeChat"]))
    assert float(same[0] @ np.array(embedder.embed(["the ministry joined WeChat"]))[0]) > 0.9999


def test_unknown_runtime_is_a_clear_error():
    from index.embedder import make_embedder

    with pytest.raises(ValueError, match="onnx, torch"):
        make_embedder("tensorflow")


def test_resync_of_unchanged_files_loads_no_model(tmp_path, embedder):
    import os
    import shutil

    from index.embedder import OnnxEmbedder
    from index.sync import Index, ingest

    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    first = Index(tmp_path / "idx", embedder)
    assert ingest(first, [docs]).added
    first.close()

    fresh = OnnxEmbedder(cache_dir=embedder.cache_dir)
    again = Index(tmp_path / "idx", fresh)
    for f in docs.iterdir():  # touched, same bytes: hashed, not re-read
        os.utime(f)
    report = ingest(again, [docs])
    assert report.unchanged and not report.added and not report.updated
    assert not fresh.loaded


def test_two_worker_processes_give_the_same_vectors(embedder):
    import numpy as np

    from index.embedder import ParallelEmbedder

    texts = [f"passage {i} about the ministry and its {i % 7} accounts" for i in range(40)]
    parallel = ParallelEmbedder("onnx", workers=2, cache_dir=embedder.cache_dir)
    try:
        assert not parallel.loaded
        got = np.array(parallel.embed(texts))
        assert parallel.loaded
        want = np.array(embedder.embed(texts))
        assert np.allclose(got, want, atol=1e-5)
        assert np.allclose(parallel.embed(texts[:2]), want[:2], atol=1e-5)  # small: in-process
    finally:
        parallel.close()


def test_workers_setting_reaches_the_embedder(tmp_path):
    from assistant.config import Settings
    from assistant.models import make_embedder
    from index.embedder import ParallelEmbedder

    assert isinstance(make_embedder(Settings.from_env({"ASSISTANT_EMBED_WORKERS": "2"}, index_dir=tmp_path)),
                      ParallelEmbedder)
    with pytest.raises(ValueError, match="at least 1"):
        Settings.from_env({"ASSISTANT_EMBED_WORKERS": "0"}, index_dir=tmp_path)
    with pytest.raises(ValueError, match="embed_runtime"):
        Settings.from_env({"ASSISTANT_EMBED_RUNTIME": "tf"}, index_dir=tmp_path)
