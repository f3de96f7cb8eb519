"""The reader's training data, without torch: labelled windows, unanswerable pairs, what is refused."""

from __future__ import annotations

import re

import pytest

from assistant.evaluation import shifts
from assistant.training import examples
from assistant.training.train import main as train_main


VOCABULARY: dict[str, int] = {}


def encode(text: str):
    """Whitespace tokens as ids (one per distinct word), with character offsets, like the tokenizer's."""
    found = list(re.finditer(r"\S+", text))
    ids = [VOCABULARY.setdefault(m.group(), 1000 + len(VOCABULARY)) for m in found]
    return ids, [(m.start(), m.end()) for m in found]


def _paragraph(source: str, words: int, answer_at: int) -> dict:
    context = " ".join(f"w{source}{i}" for i in range(words))
    answer = f"w{source}{answer_at} w{source}{answer_at + 1}"
    return {"context": context, "source": source,
            "qas": [{"question": "what is it", "answers": [{"text": answer, "answer_start": context.find(answer)}]}]}


def test_an_answered_window_labels_the_answer_tokens():
    paragraphs = [_paragraph("a", 30, 10), _paragraph("b", 30, 3)]
    windows = examples.build(paragraphs, encode, seed=1, mix=examples.Mix(0.0, 0.0))
    assert len(windows) == 2 and all(w.start for w in windows)
    for w in windows:
        assert w.end - w.start == 1 and w.start >= w.first


def test_unanswerable_pairs_hold_no_answer():
    long = _paragraph("a", 400, 5)  # several windows: those past the answer hold none of it
    windows = examples.build([long, _paragraph("b", 40, 3)], encode, seed=2, mix=examples.Mix(1.0, 1.0))
    empty = [w for w in windows if (w.start, w.end) == (0, 0)]
    assert empty, "no unanswerable pairs were made"
    answer_ids = set(encode("wa5 wa6")[0])
    for w in empty:
        if w.lo > 0:  # a window of the same passage after the answer
            assert not answer_ids & set(w.ids[w.first:])


def test_the_same_seed_gives_the_same_windows():
    paragraphs = [_paragraph(s, 300, 50) for s in "abc"]
    assert examples.build(paragraphs, encode, seed=3) == examples.build(paragraphs, encode, seed=3)


def test_training_and_dev_parts_are_disjoint():
    for name in examples.TRAINING_SETS:
        dev, training = shifts.dev_and_training(name)
        assert dev and training
        assert not {a["title"] for a in dev} & {a["title"] for a in training}
    sources = {p["source"] for p in examples.passages(["reviews"])}
    dev_titles = {f"reviews:{a['title']}" for a in shifts.dev_and_training("reviews")[0]}
    assert not sources & dev_titles


def test_the_evaluation_only_file_is_refused():
    with pytest.raises(ValueError, match="evaluation only"):
        examples.check_trainable(["wiki"])
    with pytest.raises(ValueError, match="evaluation only"):
        examples.passages(["reddit", "wiki"])
    with pytest.raises(ValueError, match="no training set"):
        examples.check_trainable(["squad"])


def test_the_training_command_refuses_the_evaluation_only_file(capsys, tmp_path):
    assert train_main(["--sets", "wiki", "--out", str(tmp_path / "r.npz")]) == 2
    assert "evaluation only" in capsys.readouterr().err
    assert not (tmp_path / "r.npz").exists()


def test_exported_weights_compute_what_the_trained_model_computes(tmp_path):
    """Torch model → int8 file → the reader's ONNX graph: the same start and end scores, up to
    int8 rounding (a transposed or misplaced weight would not be)."""
    torch = pytest.importorskip("torch")  # the [torch] extra, installed with the test tools
    import numpy as np
    import onnxruntime as ort
    from transformers import BertModel

    from assistant.pipeline.reader import load_weights
    from assistant.training import export
    from index.embedding.embedder import bundled_model_dir
    from index.embedding.onnx_graph import build_model

    torch.manual_seed(0)
    encoder = BertModel.from_pretrained(str(bundled_model_dir()), add_pooling_layer=False).eval()
    head = torch.nn.Linear(384, 2)
    export.write(export.from_state_dict(encoder.state_dict(), head.weight, head.bias), tmp_path / "r.npz")
    graph = build_model(load_weights(tmp_path / "r.npz"), head="span")
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = torch.tensor([[101, 2040, 4662, 1996, 102, 1996, 3882, 2001, 4661, 1012, 102, 0]])
    types = torch.tensor([[0] * 5 + [1] * 6 + [0]])
    mask = torch.tensor([[1] * 11 + [0]])
    with torch.no_grad():
        want = head(encoder(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state)[0, :11]
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                             "token_type_ids": types.numpy()})[0][0, :11]
    assert np.abs(got - want.numpy()).max() < 0.05 * np.abs(want.numpy()).max() + 0.02
