"""Graph -> workload: one cost rule per graph op kind, registered in :data:`COST_RULES` (the one place).

:func:`workload_from_graph` turns every op of a :class:`hwsim.graph.Graph` into the workload ops the
timing/energy model prices (``[]`` for zero-cost views). An op kind without a rule is an error naming
the op and the kind; nothing is charged by default. Adding an op kind means one numerics kernel (the
executor) and one rule here.

Formats. Each GEMM is priced at its own tensors' QuantSpecs: ``a_format`` from the activation,
``b_format``, granularity and group size from the weight (or a ``matmul``'s second activation), the
output format from the output. A GEMM input without a QuantSpec means an unquantized graph: it is
priced at the architecture's default PE formats (``pe.activation_format``/``pe.weight_format``); an op
whose inputs both lack a spec leaves through the requant unit at ``pe.output_format`` (the PE defaults
throughout). A quantized op whose output has no spec ends in a float epilogue (one multiply per output,
stored in the vector format). An operand with ``granularity: token`` is quantized per token at run
time, charged once per tensor (on the first GEMM that reads it). Group (``group``) and MX (``block``)
weights grouped along K get the per-group scale epilogue. The epilogue and per-token rules are
:mod:`hwsim.perf.epilogue`'s.

Rules (``out`` = the op's first output; counts per element of ``out`` unless noted)::

    linear, conv, matmul         GEMM on the array (``matmul``: ``batch`` activation x activation GEMMs)
    layernorm, rmsnorm           norm unit over rows of the last axis; ORI-LN (``ori_lambda``) adds one
                                 multiply per element (the Λ/L_c multiplier) on the vector unit
    softmax, gelu, silu, relu,   vector unit, VECTOR_RECIPES (hwsim.perf.workload); rope = x*cos +
    swiglu, add, mul, rope       rotate(x)*sin, swiglu = silu(gate)*up
    mean_pool                    vector unit, one add per *input* element (the 1/n scale folds into the
                                 following normalisation)
    quantize, dequantize         vector unit, one multiply (scale) and one add (round / zero point)
    requant                      requant unit (lanes, latency) on every element
    select                       vector unit, one pass per selected element (a column gather)
    hadamard                     vector unit, the factorised transform's adds per element
                                 (:func:`hwsim.hadamard.adds_per_element`; 1/sqrt(n) folds into the requant)
    embedding                    row gathers from DRAM: for every table (weight input) one row of the
                                 table's width per token, at the table's storage bits (QuantSpec, else
                                 pe.weight_format); one row per table when their widths differ;
                                 summing several tables' rows is not charged
    kv_write                     KV-cache append: DRAM writes of the new elements in the cache's format
    reshape, transpose           zero cost

In fixed-point mode (``graph.meta['fixed_point']``) softmax, GELU, SiLU, SwiGLU, RoPE and mean pooling are
priced at their integer units instead (:mod:`hwsim.perf.int_units`: adders, multipliers, table reads and
dividers at the kernels' widths; the per-op table's ``int_units`` and ``lut_bytes`` columns), as is an RL-SAT
residual ``add`` (its 32-bit accumulator add and requant; the writer GEMM's int32 output is priced as
written unless :mod:`hwsim.perf.fusion` runs the add in that GEMM's epilogue).
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod

from hwsim.perf.int_units import FIXED_KINDS, int_unit_ops
from hwsim.perf.workload import GemmOp, MemoryOp, NormOp, VectorOp, Workload

#: Rule signature: (graph, op, state) -> list of workload ops; ``state`` is shared across the graph.
CostRule = Callable[[object, object, dict], list]
#: op kind -> its cost rule (the only registry of op kinds in the performance model).
COST_RULES: dict[str, CostRule] = {}


def cost_rule(*kinds: str):
    """Register the decorated function as the cost rule of ``kinds`` (each kind once)."""

    def register(fn: CostRule) -> CostRule:
        for kind in kinds:
            if kind in COST_RULES:
                raise ValueError(f"op kind {kind!r} already has a cost rule")
            COST_RULES[kind] = fn
        return fn

    return register


def _group_along_k(quant, ndim: int) -> int:
    """Group/block size of a GEMM B operand grouped along its K axis (second to last), else 0."""
    if quant is None or quant.granularity not in ("group", "block") or not quant.group_size:
        return 0
    axis = quant.axis if quant.axis is not None else ndim - 2
    return int(quant.group_size) if axis % ndim == ndim - 2 else 0


@cost_rule("linear", "conv", "matmul")
def _gemm(graph, op, state: dict) -> list:
    batch, m, k, n = graph.gemm_dims(op)
    if not (m and k and n):
        return []
    a_t, b_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    out_q = graph.tensors[op.outputs[0]].quant
    aq, bq = a_t.quant, b_t.quant
    dynamic = state.setdefault("token_quantized", set())

    def per_token(name: str, quant) -> bool:
        if quant is None or quant.granularity != "token" or name in dynamic:
            return False
        dynamic.add(name)
        return True

    quantized = aq is not None or bq is not None
    return [GemmOp(name=op.name, m=m, k=k, n=n, count=max(1, batch), b_is_activation=op.kind == "matmul",
                   kind="conv" if op.kind == "conv" else "gemm",
                   a_format=aq.format if aq else "", b_format=bq.format if bq else "",
                   b_granularity=bq.granularity if bq else "", group_size=_group_along_k(bq, len(b_t.shape)),
                   a_dynamic=per_token(op.inputs[0], aq), b_dynamic=per_token(op.inputs[1], bq),
                   out_format=out_q.format if out_q else "",
                   epilogue="requant" if out_q is not None or not quantized else "float")]


@cost_rule("layernorm", "rmsnorm")
def _norm(graph, op, state: dict) -> list:
    shape = graph.tensors[op.outputs[0]].shape
    cols = shape[-1] if shape else 1
    rows = prod(shape[:-1]) if shape else 1
    if not (rows and cols):
        return []
    ori = _vector(op.name + ".ori", "mul", rows * cols) if op.attrs.get("ori_lambda") is not None else []
    return [NormOp(name=op.name, kind=op.kind, rows=rows, cols=cols), *ori]


def _vector(name: str, kind: str, elements: int, inputs: int = 0) -> list:
    return [VectorOp(name=name, kind=kind, elements=elements, inputs=inputs)] if elements else []


def _activation_inputs(graph, op) -> int:
    """Activation (non-weight) tensors an element-wise op reads."""
    return max(1, sum(1 for t in op.inputs if not graph.tensors[t].is_weight))


def _fixed(graph, op, kind: str, elements: int) -> list:
    """Fixed-point mode: the op's integer units (hwsim.perf.int_units) instead of the float recipe."""
    units, lut_bytes = int_unit_ops(graph, op)
    return [VectorOp(name=op.name, kind=kind, elements=elements, int_units=units, lut_bytes=lut_bytes,
                     inputs=_activation_inputs(graph, op))] \
        if elements else []


@cost_rule("softmax", "gelu", "silu", "relu", "swiglu", "add", "mul", "rope")
def _elementwise(graph, op, state: dict) -> list:
    if graph.meta.get("fixed_point") and (op.kind in FIXED_KINDS or op.attrs.get("residual") == "rl-sat"):
        return _fixed(graph, op, op.kind, graph.tensors[op.outputs[0]].size)
    return _vector(op.name, op.kind, graph.tensors[op.outputs[0]].size, _activation_inputs(graph, op))


@cost_rule("mean_pool")
def _mean_pool(graph, op, state: dict) -> list:
    if graph.meta.get("fixed_point"):
        return _fixed(graph, op, "add", graph.tensors[op.inputs[0]].size)
    return _vector(op.name, "add", graph.tensors[op.inputs[0]].size, 1)


@cost_rule("quantize", "dequantize")
def _convert(graph, op, state: dict) -> list:
    return _vector(op.name, "convert", graph.tensors[op.outputs[0]].size)


@cost_rule("requant")
def _requant(graph, op, state: dict) -> list:
    return _vector(op.name, "requant", graph.tensors[op.outputs[0]].size)


@cost_rule("select")
def _select(graph, op, state: dict) -> list:
    return _vector(op.name, "elementwise", graph.tensors[op.outputs[0]].size)


@cost_rule("hadamard")
def _hadamard(graph, op, state: dict) -> list:
    from hwsim.hadamard import adds_per_element

    out = graph.tensors[op.outputs[0]]
    n = out.shape[-1] if out.shape else 0
    return _vector(op.name, "add", out.size * adds_per_element(n)) if n else []


@cost_rule("embedding")
def _embedding(graph, op, state: dict) -> list:
    out = graph.tensors[op.outputs[0]]
    tokens = out.size // out.shape[-1] if out.shape and out.shape[-1] else 0
    tables = [graph.tensors[name] for name in op.inputs if graph.tensors[name].is_weight]
    # (elements read, stored bits; 0 = pe.weight_format) per table; one op when all share a width
    reads = [(tokens * t.shape[-1], t.bits_per_element if t.quant is not None else 0) for t in tables]
    reads = [(e, b) for e, b in reads if e]
    if len({b for _, b in reads}) <= 1:
        total = sum(e for e, _ in reads)
        return [MemoryOp(name=op.name, kind="embedding", elements=total, bits=reads[0][1])] if total else []
    return [MemoryOp(name=f"{op.name}[{t.name}]", kind="embedding", elements=e, bits=b)
            for t, (e, b) in zip(tables, reads, strict=True)]


@cost_rule("kv_write")
def _kv_write(graph, op, state: dict) -> list:
    cache = graph.tensors[op.outputs[0]]
    bits = cache.bits_per_element if cache.quant is not None else 0
    elements = graph.tensors[op.inputs[0]].size
    return [MemoryOp(name=op.name, kind="kv_write", elements=elements, bits=bits)] if elements else []


@cost_rule("reshape", "transpose")
def _view(graph, op, state: dict) -> list:
    return []


def lower_ops(graph) -> list[tuple[object, list]]:
    """``(graph op, its workload ops)`` for every op of ``graph`` in execution order (its cost rule).

    Raises ``ValueError`` naming the op and its kind when the kind has no cost rule.
    """
    out, state = [], {}
    for op in graph.ops:
        rule = COST_RULES.get(op.kind)
        if rule is None:
            raise ValueError(f"graph {graph.name!r}: op {op.name!r} has kind {op.kind!r}, which has no cost rule "
                             f"in hwsim.perf.graph_costs; known kinds: {', '.join(sorted(COST_RULES))}")
        out.append((op, rule(graph, op, state)))
    return out


def workload_from_graph(graph) -> Workload:
    """The workload of ``graph``: every op through its cost rule, in execution order (no fusion;
    :func:`hwsim.perf.fusion.fuse_workload` groups ops).

    Raises ``ValueError`` naming the op and its kind when the kind has no cost rule.
    """
    return Workload(graph.name, tuple(w for _, ops in lower_ops(graph) for w in ops))
