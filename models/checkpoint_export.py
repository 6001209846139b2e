"""Export a quantized graph as a real checkpoint folder (GPTQ, AWQ GEMM, compressed-tensors) and read it back.

:func:`export_checkpoint` writes what a deployment tool loads: ``model.safetensors`` with the model family's
Hugging Face tensor names (MiniLM: ``encoder.layer.{i}.attention.self.query.qweight``...; SmolLM2:
``model.layers.{i}.self_attn.q_proj.qweight``..., ``lm_head`` when the head is quantized), every float tensor
the graph uses (embeddings, norms, biases) in the graph's own values and dtype, and ``config.json`` = the
model's config plus ``quantization_config`` as the tools write it:

``gptq`` (AutoGPTQ ``BaseQuantizeConfig.to_dict``, also written to ``quantize_config.json``)
    ``bits, group_size (-1 = per channel), damp_percent, desc_act, static_groups, sym, true_sequential,
    model_name_or_path, model_file_base_name, quant_method: gptq, checkpoint_format: gptq``. hwsim's GPTQ
    with act-order always uses static groups (scales per contiguous group of K), so its ``g_idx`` is
    ``k // group_size`` with ``desc_act: true, static_groups: true`` — what AutoGPTQ writes for that case.
``awq`` (AutoAWQ ``save_quantized``)
    ``quant_method: awq, zero_point: true, group_size, bits: 4, version: gemm, modules_to_not_convert``.
``pack-quantized`` (compressed-tensors ``QuantizationConfig``)
    ``quant_method: compressed-tensors, format: pack-quantized, quantization_status: compressed``, one config
    group targeting ``Linear`` with ``weights: {num_bits, type: int, symmetric, strategy: group|channel,
    group_size, dynamic: false, ...}``, ``ignore`` for linears left in float.

Tensor layouts are :mod:`hwsim.models.checkpoints` (the same packers the ``checkpoint`` recipe step uses).
Weights are weight-only in these layouts: activation specs are not stored (a reader re-applies
``rtn: {weights: keep, activations: ...}``). Scales are stored as float16, the layouts' dtype; a scale that is
not a float16 value is rounded (counted in the summary, ``scales_rounded``) and :func:`stored_graph` is the
graph with the weights exactly as stored. SmolLM2's q/k columns are un-permuted from GGUF's interleaved-rope
order to Hugging Face's order (llama.cpp's ``permute`` inverted) on export and permuted back on import.

A layer whose spec the layout cannot express (non-integer formats such as FP4/NF4/dINT, MX blocks, GGUF
offsets, bits the layout does not pack, groups along N, layers differing in bits/group size) is refused with
one line naming the layer. :func:`import_checkpoint` reads a folder back onto the graph it came from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError
from hwsim.models.checkpoints import QuantLinear, pack_linear, read_safetensors, unpack_linear
from hwsim.qspec import QuantSpec

EXPORT_LAYOUTS = ("gptq", "awq", "pack-quantized")
#: Bits each layout packs (GPTQ 3-bit: one bit stream, 32 values per 3 words; compressed-tensors would pad 3-bit
#: values 10 per word, not implemented).
LAYOUT_BITS = {"gptq": (2, 3, 4, 8), "awq": (4,), "pack-quantized": (2, 4, 8)}
WEIGHTS_FILE = "model.safetensors"
FLOAT16_MAX = 65504.0

#: GGUF (llama.cpp) tensor names -> Hugging Face Llama names.
LLM_NAMES = ((r"blk\.(\d+)\.attn_q\.", "model.layers.{}.self_attn.q_proj."),
             (r"blk\.(\d+)\.attn_k\.", "model.layers.{}.self_attn.k_proj."),
             (r"blk\.(\d+)\.attn_v\.", "model.layers.{}.self_attn.v_proj."),
             (r"blk\.(\d+)\.attn_output\.", "model.layers.{}.self_attn.o_proj."),
             (r"blk\.(\d+)\.ffn_gate\.", "model.layers.{}.mlp.gate_proj."),
             (r"blk\.(\d+)\.ffn_up\.", "model.layers.{}.mlp.up_proj."),
             (r"blk\.(\d+)\.ffn_down\.", "model.layers.{}.mlp.down_proj."),
             (r"blk\.(\d+)\.attn_norm\.", "model.layers.{}.input_layernorm."),
             (r"blk\.(\d+)\.ffn_norm\.", "model.layers.{}.post_attention_layernorm."),
             (r"output_norm\.", "model.norm."), (r"token_embd\.", "model.embed_tokens."))


class ExportError(HwsimError, ValueError):
    """The graph cannot be written in the requested layout (one line naming the layer)."""


@dataclass
class StoredLinear:
    """One linear as stored: its Hugging Face module name, graph op/tensor names and packed form."""

    module: str
    op: str
    tensor: str
    q: QuantLinear
    symmetric: bool
    scales_rounded: int
    max_scale_rel_change: float


# -- names ------------------------------------------------------------------------------------------
def hf_tensor_name(graph, name: str) -> str:
    """Hugging Face name of graph tensor ``name`` (MiniLM names already are; SmolLM2: GGUF -> Llama)."""
    if graph.meta.get("family") != "llm":
        return name
    for pattern, template in LLM_NAMES:
        m = re.match(pattern, name)
        if m:
            return template.format(*m.groups()) + name[m.end():]
    raise ExportError(f"tensor {name!r}: no Hugging Face Llama name for it (graph {graph.name!r})")


def linear_module(graph, op) -> str:
    """Module name of a linear op: ``lm_head`` for the LLM output head, else its weight's name minus ``.weight``."""
    if graph.meta.get("family") == "llm" and op.name == "output":
        return "lm_head"
    name = hf_tensor_name(graph, op.inputs[1])
    if not name.endswith(".weight"):
        raise ExportError(f"linear {op.name!r}: weight tensor {op.inputs[1]!r} does not end in '.weight'")
    return name[: -len(".weight")]


def rope_permutation(graph, op) -> np.ndarray | None:
    """GGUF -> HF column order of a SmolLM2 q/k projection (``hf = gguf[:, perm]``), else None.

    llama.cpp's converter reorders each head's output rows from (2, d/2) to (d/2, 2) so its adjacent-pair
    RoPE equals Hugging Face's half-split one; this returns the inverse reordering.
    """
    m = re.match(r"blk\.(\d+)\.attn_([qk])$", op.name)
    if graph.meta.get("family") != "llm" or m is None:
        return None
    heads = int(graph.op(f"blk.{m.group(1)}.{m.group(2)}_split").attrs["shape"][2])
    return hf_column_order(heads, graph.tensors[op.inputs[1]].shape[1])


def hf_column_order(heads: int, n: int) -> np.ndarray:
    """Columns of a GGUF q/k weight ``[K, n]`` in Hugging Face order: ``hf = gguf[:, order]``.

    llama.cpp's ``permute`` maps HF row ``(h, j, i)`` (``j`` in 2, ``i`` in head_dim/2) to GGUF row ``(h, i, j)``.
    """
    if n % (2 * heads):
        raise ExportError(f"q/k width {n} is not a multiple of 2 x {heads} heads")
    return np.arange(n).reshape(heads, n // heads // 2, 2).transpose(0, 2, 1).reshape(-1)


# -- spec <-> layout --------------------------------------------------------------------------------
def _refuse(layout: str, name: str, what: str):
    raise ExportError(f"layer {name!r}: {what}; a {layout} checkpoint cannot hold it")


def _fp16(scale: np.ndarray, layout: str, name: str) -> tuple[np.ndarray, int, float]:
    s = np.asarray(scale, np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0) or np.any(s >= FLOAT16_MAX):
        _refuse(layout, name, f"scales must be positive float16 values below {FLOAT16_MAX:g}, "
                              f"not in [{s.min():g}, {s.max():g}]")
    h = s.astype(np.float16).astype(np.float64)
    if np.any(h == 0):
        _refuse(layout, name, f"scale {s[h == 0].flat[0]:g} underflows float16")
    changed = h != s
    rel = float(np.max(np.abs(h - s) / s)) if changed.any() else 0.0
    return h, int(changed.sum()), rel


def spec_to_linear(spec: QuantSpec | None, layout: str, name: str) -> tuple[QuantLinear, bool, int, float]:
    """A weight spec as the layout stores it: ``(QuantLinear with unsigned codes and zero points, symmetric,
    scales rounded to float16, largest relative scale change)``; refuses what the layout cannot hold."""
    from hwsim.formats import get_format

    if spec is None or spec.codes is None:
        _refuse(layout, name, "the weight is not quantized (no codes)")
    if spec.granularity == "block":
        _refuse(layout, name, f"weight {spec.describe()} uses MX blocks with power-of-two scales")
    fmt = get_format(spec.element_format)
    if fmt.kind != "int":
        _refuse(layout, name, f"weight format {spec.format!r} is not an integer format (codes are "
                              "integers with integer zero points in this layout)")
    if spec.offset is not None:
        _refuse(layout, name, f"weight {spec.describe()} carries a real per-group offset (GGUF Q4_1 style), "
                              "not an integer zero point")
    if fmt.bits not in LAYOUT_BITS[layout]:
        _refuse(layout, name, f"weight {spec.describe()} has {fmt.bits} bits, not one of {LAYOUT_BITS[layout]}")
    if spec.granularity == "group" and spec.axis != 0:
        _refuse(layout, name, f"weight groups run along axis {spec.axis}, not along K (axis 0)")
    k, n = spec.codes.shape
    group = spec.group_size if spec.granularity == "group" else k
    if k % group:
        _refuse(layout, name, f"group size {group} does not divide in_features {k}")
    shape = (k // group, n)
    half = 1 << (fmt.bits - 1) if fmt.signed else 0
    codes = fmt.code_to_int(np.asarray(spec.codes)).astype(np.int64) + half
    zp = np.zeros(shape, np.int64) if spec.zero_point is None else \
        np.broadcast_to(np.asarray(spec.zero_point, np.int64).reshape(-1 if spec.granularity == "group" else 1, n)
                        if np.ndim(spec.zero_point) else np.asarray(spec.zero_point, np.int64), shape)
    zeros = np.array(zp, np.int64) + half
    lo, hi = (1, 1 << fmt.bits) if layout == "gptq" else (0, (1 << fmt.bits) - 1)
    if zeros.min() < lo or zeros.max() > hi:
        _refuse(layout, name, f"zero points must lie in [{lo}, {hi}] as stored, not "
                              f"[{int(zeros.min())}, {int(zeros.max())}]" + (" (GPTQ v1 stores zero - 1)"
                                                                              if layout == "gptq" else ""))
    scale = np.broadcast_to(np.asarray(spec.scale, np.float64).reshape(-1 if spec.granularity == "group" else 1, n)
                            if np.ndim(spec.scale) else np.asarray(spec.scale, np.float64), shape)
    s16, rounded, rel = _fp16(scale, layout, name)
    symmetric = bool(fmt.signed and not np.any(zp))
    return QuantLinear(layout, fmt.bits, group, codes, s16, zeros), symmetric, rounded, rel


def linear_to_spec(q: QuantLinear, symmetric: bool) -> QuantSpec:
    """The weight spec a stored linear executes as: ``int{b}`` without zero point when symmetric, else
    ``uint{b}`` with zero points; per channel when one group spans K (same accumulators either way)."""
    k, n = q.codes.shape
    half = 1 << (q.bits - 1)
    zeros = np.asarray(q.zeros, np.int64)
    if symmetric and not np.all(zeros == half):
        raise ExportError(f"checkpoint says symmetric but a stored zero point is not {half}")
    fmt = f"int{q.bits}" if symmetric else f"uint{q.bits}"
    from hwsim.formats import get_format

    codes = get_format(fmt).int_to_code(np.asarray(q.codes, np.int64) - (half if symmetric else 0))
    zp = None if symmetric else zeros
    scale = np.asarray(q.scales, np.float64)
    if q.group_size == k:
        return QuantSpec(fmt, "channel", 1, None, scale=scale.reshape(n),
                         zero_point=None if zp is None else zp.reshape(n), codes=codes)
    return QuantSpec(fmt, "group", 0, q.group_size, scale=scale, zero_point=zp, codes=codes)


def _permute(q: QuantLinear, cols: np.ndarray) -> QuantLinear:
    return QuantLinear(q.layout, q.bits, q.group_size, q.codes[:, cols], q.scales[:, cols],
                       None if q.zeros is None else q.zeros[:, cols])


# -- collecting the graph ---------------------------------------------------------------------------
def stored_linears(graph, layout: str) -> list[StoredLinear]:
    """Every quantized linear of ``graph`` in ``layout`` (HF column order); refuses what cannot be stored."""
    if layout not in EXPORT_LAYOUTS:
        raise ExportError(f"layout must be one of {', '.join(EXPORT_LAYOUTS)}, not {layout!r}")
    out = []
    for op in graph.ops:
        if op.kind != "linear":
            continue
        spec = graph.tensors[op.inputs[1]].quant
        if (spec is None or spec.codes is None) and linear_module(graph, op) == "lm_head":
            continue  # a float (tied) head: AutoGPTQ/AutoAWQ never quantize lm_head
        q, sym, rounded, rel = spec_to_linear(spec, layout, op.name)
        perm = rope_permutation(graph, op)
        out.append(StoredLinear(linear_module(graph, op), op.name, op.inputs[1],
                                q if perm is None else _permute(q, perm), sym, rounded, rel))
    if not out:
        raise ExportError(f"graph {graph.name!r} has no quantized linear to export")
    first = out[0]
    for s in out[1:]:
        if (s.q.bits, s.q.group_size if s.q.group_size != s.q.codes.shape[0] else -1, s.symmetric) != \
                (first.q.bits, first.q.group_size if first.q.group_size != first.q.codes.shape[0] else -1,
                 first.symmetric):
            raise ExportError(f"layer {s.op!r}: {s.q.bits}-bit group {s.q.group_size} "
                              f"{'symmetric' if s.symmetric else 'asymmetric'} differs from layer {first.op!r} "
                              f"({first.q.bits}-bit group {first.q.group_size}); one {layout} config holds one "
                              "setting for all layers")
    return out


#: Op kinds a Hugging Face BERT/Llama checkpoint can express (plus the quantization ops activation recipes
#: insert). A recipe-inserted ``mul`` (an unfoldable SmoothQuant/AWQ scale, SmoothQuant's un-smoothing of a
#: post-LN residual), ``hadamard`` (online rotation) or ``select`` (LLM.int8()) has no place in the checkpoint.
HF_OP_KINDS = frozenset({"linear", "matmul", "add", "embedding", "layernorm", "rmsnorm", "softmax", "gelu", "silu",
                         "swiglu", "rope", "mean_pool", "reshape", "transpose", "requant", "quantize", "dequantize"})


def check_ops(graph, layout: str) -> None:
    """Refuse a graph with an op the Hugging Face model does not have (one line naming it)."""
    for op in graph.ops:
        if op.kind not in HF_OP_KINDS:
            raise ExportError(f"op {op.name!r} ({op.kind}) was added by the recipe and the Hugging Face model has no "
                              f"such op; a {layout} checkpoint cannot hold it (SmoothQuant/AWQ scales that fold "
                              "completely, GPTQ and RTN export)")


def _linear_of_tensor(graph, tensor: str, slot: int):
    return next((op for op in graph.ops if op.kind == "linear" and len(op.inputs) > slot
                 and op.inputs[slot] == tensor), None)


def _to_hf(graph, t: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    """HF name and orientation of graph weight ``t`` (linear weights transposed, q/k rows in HF order)."""
    w_op, b_op = _linear_of_tensor(graph, t, 1), _linear_of_tensor(graph, t, 2)
    if b_op is not None:
        perm = rope_permutation(graph, b_op)
        return linear_module(graph, b_op) + ".bias", value if perm is None else value[perm]
    if w_op is not None and value.ndim == 2:
        perm = rope_permutation(graph, w_op)
        value = value.T  # graph stores y = x @ W as [K, N]; HF stores [N, K]
        return hf_tensor_name(graph, t), value if perm is None else value[perm]
    return hf_tensor_name(graph, t), value


def _from_hf(graph, t: str, value: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_to_hf` for the value."""
    w_op, b_op = _linear_of_tensor(graph, t, 1), _linear_of_tensor(graph, t, 2)
    op = b_op if b_op is not None else w_op
    perm = None if op is None else rope_permutation(graph, op)
    if perm is not None:
        value = value[np.argsort(perm)]
    return value.T if b_op is None and w_op is not None and value.ndim == 2 else value


def float_tensors(graph, stored: list[StoredLinear]) -> dict:
    """``{HF name: array}`` of every graph weight the checkpoint keeps in float (HF orientation)."""
    quantized = {s.tensor for s in stored}
    used_float = {t for op in graph.ops for i, t in enumerate(op.inputs) if t in graph.weights
                  and not (op.kind == "linear" and i == 1 and t in quantized)}
    out = dict(_to_hf(graph, t, np.asarray(graph.weights[t])) for t in sorted(used_float))
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def check_llm_biases(graph) -> None:
    """SmolLM2's (Llama's) linears have no bias: refuse one a recipe added (e.g. GOM's data shift)."""
    if graph.meta.get("family") != "llm":
        return
    for op in graph.ops:
        if op.kind == "linear" and len(op.inputs) > 2:
            raise ExportError(f"linear {op.name!r} has a bias {op.inputs[2]!r} added by the recipe; the Llama "
                              "checkpoint has no bias for it")


def check_exportable(graph, layout: str) -> list[StoredLinear]:
    """Every check of an export (biases, ops, each linear's spec) before anything is written; the linears."""
    check_llm_biases(graph)
    check_ops(graph, layout)
    return stored_linears(graph, layout)


# -- config.json ------------------------------------------------------------------------------------
def _gptq_params(recipe) -> dict:
    steps = [] if recipe is None else [s for s in recipe.steps if s.name == "gptq"]
    if not steps:
        return {"damp_percent": 0.01, "desc_act": False, "static_groups": False}
    p = steps[-1].params
    return {"damp_percent": float(p["damp"]), "desc_act": bool(p["act_order"]),
            "static_groups": bool(p["static_groups"] or p["act_order"])}


def quantization_config(layout: str, stored: list[StoredLinear], ignore: list, recipe=None) -> dict:
    """``quantization_config`` as AutoGPTQ / AutoAWQ / compressed-tensors write it."""
    q, sym = stored[0].q, stored[0].symmetric
    group = -1 if q.group_size == q.codes.shape[0] else q.group_size
    if layout == "gptq":
        return {"bits": q.bits, "group_size": group, **_gptq_params(recipe), "sym": sym, "true_sequential": True,
                "model_name_or_path": None, "model_file_base_name": "model", "quant_method": "gptq",
                "checkpoint_format": "gptq"}
    if layout == "awq":
        return {"quant_method": "awq", "zero_point": True, "group_size": group, "bits": 4, "version": "gemm",
                "modules_to_not_convert": ignore or None}
    weights = {"num_bits": q.bits, "type": "int", "symmetric": sym, "group_size": None if group == -1 else group,
               "strategy": "channel" if group == -1 else "group", "block_structure": None, "dynamic": False,
               "actorder": None, "observer": "minmax", "observer_kwargs": {}}
    return {"quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": None,
                                          "output_activations": None}},
            "ignore": ignore, "kv_cache_scheme": None, "global_compression_ratio": None}


def model_config(graph, layers: int | None = None) -> dict:
    """The model's Hugging Face ``config.json`` (MiniLM: the packaged file; SmolLM2: from the GGUF)."""
    n_layers = sum(1 for op in graph.ops if op.kind == "linear" and re.search(r"(self\.query|attn_q)$", op.name))
    if graph.meta.get("family") != "llm":
        from hwsim.models import minilm

        cfg = json.loads((minilm.model_dir() / "config.json").read_text())
        cfg["num_hidden_layers"] = n_layers
        return cfg
    from hwsim.models.gguf_import import shared_model

    c = shared_model().config
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": c.hidden,
            "intermediate_size": c.ffn, "num_attention_heads": c.heads, "num_key_value_heads": c.kv_heads,
            "num_hidden_layers": n_layers, "rms_norm_eps": float(str(np.float32(c.eps))),
            "rope_theta": c.rope_base,
            "vocab_size": c.vocab, "hidden_act": "silu", "max_position_embeddings": 8192,
            "tie_word_embeddings": True, "torch_dtype": "float32"}


# -- export / import --------------------------------------------------------------------------------
def export_checkpoint(graph, layout: str, out_dir, *, recipe=None, config: dict | None = None) -> dict:
    """Write ``graph``'s quantized linears and float tensors as a ``layout`` checkpoint into ``out_dir``.

    Returns a summary: layout, files, linears, bits, group size, ``scales_rounded`` (float16 rounding) and
    its largest relative change. ``out_dir`` should be a staging folder (:func:`hwsim.result_set.result_set`).
    """
    from hwsim.atomic_io import write_json_atomic

    stored = check_exportable(graph, layout)
    tensors = float_tensors(graph, stored)
    cfg = dict(config if config is not None else model_config(graph))
    n_float = len(tensors)
    for s in stored:
        tensors.update(pack_linear(s.q if not (layout == "pack-quantized" and s.symmetric) else
                                   QuantLinear(s.q.layout, s.q.bits, s.q.group_size, s.q.codes, s.q.scales),
                                   s.module))
    float_heads = [linear_module(graph, op) for op in graph.ops if op.kind == "linear"
                   and linear_module(graph, op) not in {s.module for s in stored}]
    if any(s.module == "lm_head" for s in stored):
        cfg["tie_word_embeddings"] = False
    cfg["quantization_config"] = quantization_config(layout, stored, float_heads, recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import save

    from hwsim.atomic_io import write_bytes_atomic

    write_bytes_atomic(out / WEIGHTS_FILE, save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                                                metadata={"format": "pt"}))
    write_json_atomic(out / "config.json", cfg)
    files = [WEIGHTS_FILE, "config.json"]
    if layout == "gptq":
        write_json_atomic(out / "quantize_config.json", cfg["quantization_config"])
        files.append("quantize_config.json")
    q = stored[0].q
    return {"layout": layout, "files": files, "linears": len(stored), "bits": q.bits,
            "group_size": -1 if q.group_size == q.codes.shape[0] else q.group_size,
            "symmetric": stored[0].symmetric, "float_tensors": n_float,
            "scales_rounded": int(sum(s.scales_rounded for s in stored)),
            "scales_total": int(sum(s.q.scales.size for s in stored)),
            "max_scale_rel_change": max(s.max_scale_rel_change for s in stored)}


def layout_of(config: dict, path) -> tuple[str, int, bool]:
    """``(layout, bits, symmetric)`` from a ``config.json``'s ``quantization_config``."""
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        raise ExportError(f"{path}: quantization_config is missing, not a quantized checkpoint")
    method = qc.get("quant_method")
    if method == "gptq":
        return "gptq", int(qc["bits"]), bool(qc.get("sym", True))
    if method == "awq":
        return "awq", int(qc["bits"]), False
    if method == "compressed-tensors" and qc.get("format") == "pack-quantized":
        w = qc["config_groups"]["group_0"]["weights"]
        return "pack-quantized", int(w["num_bits"]), bool(w["symmetric"])
    raise ExportError(f"{path}: quantization_config.quant_method must be gptq, awq or compressed-tensors "
                      f"(pack-quantized), not {method!r}")


def read_export(directory) -> tuple[str, bool, dict, dict]:
    """``(layout, symmetric, {module: QuantLinear}, {name: float array})`` of an exported folder."""
    directory = Path(directory)
    cfg_path = directory / "config.json"
    if not cfg_path.is_file():
        raise ExportError(f"{cfg_path}: not found; expected an exported checkpoint folder")
    layout, bits, symmetric = layout_of(json.loads(cfg_path.read_text()), cfg_path)
    tensors, _ = read_safetensors(directory / WEIGHTS_FILE)
    key = ".qweight" if layout in ("gptq", "awq") else ".weight_packed"
    modules = sorted(n[: -len(key)] for n in tensors if n.endswith(key))
    linears = {m: unpack_linear(tensors, m, layout, bits=bits) for m in modules}
    packed = {n for n in tensors if any(n.startswith(m + ".") for m in modules)}
    return layout, symmetric, linears, {n: v for n, v in tensors.items() if n not in packed}


def import_checkpoint(directory, graph):
    """``graph`` with every weight replaced by what the checkpoint in ``directory`` stores (frozen).

    Quantized linears get :func:`linear_to_spec` specs; float tensors are set from the file (same shapes);
    activation specs stay the graph's. Every quantized linear of the graph must be in the file.
    """
    layout, symmetric, linears, floats = read_export(directory)
    g = graph.edit()
    for op in graph.ops:
        if op.kind != "linear":
            continue
        module = linear_module(graph, op)
        if module not in linears:
            continue
        q = linears[module]
        perm = rope_permutation(graph, op)
        if perm is not None:
            q = _permute(q, np.argsort(perm))
        spec = linear_to_spec(q, symmetric)
        if spec.codes.shape != graph.tensors[op.inputs[1]].shape:
            raise ExportError(f"{directory}: {module} has shape {spec.codes.shape}, the graph's "
                              f"{op.inputs[1]!r} {graph.tensors[op.inputs[1]].shape}")
        g.set_quant(op.inputs[1], spec)
    for name in graph.weights:
        hf, _ = _to_hf(graph, name, np.asarray(graph.weights[name]))
        if hf in floats:
            g.set_weight(name, np.ascontiguousarray(_from_hf(graph, name, floats[hf])))
    return g.freeze()


def stored_graph(graph, layout: str):
    """``graph`` with its quantized linears exactly as ``layout`` stores them (float16 scales): what
    :func:`import_checkpoint` of an export returns."""
    g = graph.edit()
    for s in stored_linears(graph, layout):
        perm = rope_permutation(graph, graph.op(s.op))
        q = s.q if perm is None else _permute(s.q, np.argsort(perm))
        g.set_quant(s.tensor, linear_to_spec(q, s.symmetric))
    return g.freeze()
