"""Operator fusion: a pass over the workload graph that runs producer/consumer chains as one group.

:func:`fuse_workload` lowers a :class:`hwsim.graph.Graph` like :func:`hwsim.perf.graph_costs.workload_from_graph`
but replaces each fusible chain by one :class:`FusedOp`, priced by :mod:`hwsim.perf.fused_timing` (its
units run concurrently over a pipeline of tiles, :mod:`hwsim.perf.pipeline`). It is on by default for
``pipelined`` timing with the mapper (``arch.timing.fusion: false`` turns it off; ``scalesim``/``tile``
modes and ``mapper: folds`` never fuse). Every MAC, softmax element and element-wise operation of the
members is still charged on its unit; only DRAM round trips of on-chip intermediates disappear, and
their SRAM traffic is charged instead.

Rules::

    attention  matmul (scores) -> softmax -> matmul (context), the scores feeding only the softmax and
               the probabilities only the context GEMM (through reshape/transpose views): FlashAttention-
               style tiles (hwsim.perf.flash_attention), so the S x T score and probability matrices
               never reach DRAM; with a causal softmax (``causal`` attribute) the kv blocks above the
               diagonal are skipped. Fused only if a tile fits the SRAM, otherwise refused with the
               smallest tile's footprint; also refused for a fixed-point softmax (its integer units
               are priced per whole row).
    epilogue   a linear/matmul GEMM followed by a chain of element-wise ops (EPILOGUE_KINDS), each
               the only consumer of the previous output: the chain runs on the GEMM's output tiles;
               the intermediates stay on chip and only the chain's last output is written. An operand
               produced outside the chain (a residual) streams in from DRAM per output tile
               (activation bits of extra tile space per output element; hwsim.perf.mapper). Two
               linear GEMMs reading the same input whose outputs feed only one binary op (SwiGLU's
               gate and up) run as one GEMM over their concatenated weight columns, the op combining
               the two halves of each output tile. Fused only if the mapper finds a mapping of the
               GEMM that fits the buffers with the epilogue's tile space.
    block      an attention group whose Q, K and V come from three linear projections of one input
               (each plain or with its epilogue group: RoPE, KV-cache write) becomes one head-pipelined
               block: the projections run with the output-column (head) loop outermost, so the heads
               of column block j are complete when block j's attention starts, and block j+1's
               projections (array, DRAM) overlap block j's attention (vector unit). The two share the
               SRAM: the projections are mapped in a fraction f of it (SRAM_SPLITS) and the attention
               tiles chosen in the rest; the fastest f is kept. Pipeline stages = the projections'
               column blocks.
    decision   a group is fused only if its pipelined latency (hwsim.perf.fused_timing) is not above
               the sum of its members' unfused latencies (the epilogue's tile space can force a
               smaller GEMM tile); a block only if it beats its parts as separate groups; otherwise
               the candidate is refused with both figures.
    rowwise    an element-wise add/mul (a residual add) followed by a LayerNorm/RMSNorm of the same
               rows: blocks of whole rows (double-buffered: the add's inputs, its output and the norm's
               output, as many rows as fit the SRAM) pass the vector unit, then the norm unit, so the
               norm reads the sum on chip; the sum is still written when another op reads it (the
               next residual add). Refused if one row does not fit.
    not fused  LayerNorm/RMSNorm in a GEMM's epilogue (their statistics need the whole hidden row
               before any output, while a GEMM output tile holds Tn columns), softmax outside the
               attention pattern, embeddings, GEMM -> GEMM chains.

The plan (:class:`FusionPlan`, ``summary.json["fusion"]``) lists every group with its members and
why it was fused, and every refused candidate with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hwsim.perf.flash_attention import AttentionShape, FlashTile, best_tile
from hwsim.perf.format_info import format_info
from hwsim.perf.graph_costs import lower_ops
from hwsim.perf.workload import GemmOp, Workload

#: graph op kinds fused into a producing GEMM's output stage
EPILOGUE_KINDS = frozenset({"rope", "add", "mul", "gelu", "silu", "relu", "swiglu", "requant", "quantize",
                            "dequantize", "kv_write"})
VIEW_KINDS = frozenset({"reshape", "transpose"})
NORM_KINDS = frozenset({"layernorm", "rmsnorm"})


@dataclass(frozen=True, kw_only=True)
class FusedOp:
    """One fused group as a workload op (module docstring).

    ``attention``: ``ops`` = (scores GemmOp, softmax VectorOp, context GemmOp), ``shape``/``tile``.
    ``epilogue``: ``gemm`` (two sibling GEMMs concatenated along N), ``ops`` the element-wise ops in
    order with ``dram_inputs`` (operands streamed from DRAM) and ``escapes`` (output written to DRAM).
    ``rowwise``: ``ops`` = (element-wise VectorOp, NormOp), ``rows_per_tile``.
    ``block``: ``subs`` (the q/k/v units), ``attention`` (its attention FusedOp), ``sram_split``.
    """

    name: str
    kind: str
    members: tuple[str, ...]
    reason: str
    ops: tuple = ()
    gemm: GemmOp | None = None
    dram_inputs: tuple[int, ...] = ()
    escapes: tuple[bool, ...] = ()
    epilogue_bits: float = 0.0
    shape: AttentionShape | None = None
    tile: FlashTile | None = None
    count: int = 1
    #: ``rowwise``: rows per SRAM tile (a block of whole rows)
    rows_per_tile: int = 0
    #: ``block``: the q/k/v projection units (FusedOp epilogues or GemmOps), the attention group and the
    #: projections' share of the SRAM
    subs: tuple = ()
    attention: FusedOp | None = None
    sram_split: float = 0.0

    @property
    def macs(self) -> int:
        if self.kind == "block":
            return sum(u.macs for u in (*self.subs, self.attention))
        gemms = [self.gemm] if self.gemm is not None else [o for o in self.ops if isinstance(o, GemmOp)]
        return sum(g.macs for g in gemms)


@dataclass
class FusionPlan:
    """What the pass fused and refused (``to_dict()`` is ``summary.json["fusion"]``)."""

    enabled: bool
    note: str = ""
    groups: list[FusedOp] = field(default_factory=list)
    refused: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "note": self.note,
                "groups": [{"name": g.name, "kind": g.kind, "ops": list(g.members), "reason": g.reason}
                           for g in self.groups],
                "refused": [{"ops": list(ops), "reason": why} for ops, why in self.refused]}


def plan_text(plan: dict) -> str:
    """One terminal line of a plan's ``to_dict()``."""
    if not plan["enabled"]:
        return f"  fusion: off ({plan['note']})"
    kinds: dict[str, int] = {}
    for g in plan["groups"]:
        kinds[g["kind"]] = kinds.get(g["kind"], 0) + 1
    done = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    fused = sum(len(g["ops"]) for g in plan["groups"])
    return (f"  fusion: {len(plan['groups'])} groups ({done}), {fused} ops fused; {len(plan['refused'])} "
            f"candidates not fused (summary.json fusion.refused)")


class _Graph:
    """Producer/consumer walks through views."""

    def __init__(self, graph):
        self.g = graph
        self.cons = graph.consumers()
        self.prods = graph.producers()

    def users(self, tensor: str) -> list:
        out = []
        for op in self.cons.get(tensor, []):
            out.extend(self.users(op.outputs[0]) if op.kind in VIEW_KINDS else [op])
        return out

    def source(self, tensor: str):
        op = self.prods.get(tensor)
        while op is not None and op.kind in VIEW_KINDS:
            op = self.prods.get(op.inputs[0])
        return op


def fusion_off_reason(arch, mode: str | None) -> str:
    """Why fusion does not apply to ``arch`` in ``mode`` ("" when it does)."""
    mode = mode or arch.timing_mode
    if not arch.fusion:
        return "arch.timing.fusion is false"
    if mode != "pipelined":
        return f"{mode} timing runs every op on its own"
    if arch.mapper != "search":
        return "arch.timing.mapper is 'folds' (fusion needs the tiling mapper)"
    return ""


def fuse_workload(graph, arch, mode: str | None = None) -> tuple[Workload, FusionPlan]:
    """The workload of ``graph`` with fusible chains replaced by :class:`FusedOp` (module docstring)."""
    lowered = lower_ops(graph)
    off = fusion_off_reason(arch, mode)
    if off:
        return Workload(graph.name, tuple(w for _, ops in lowered for w in ops)), FusionPlan(False, off)
    plan = FusionPlan(True)
    wops = {op.name: ops for op, ops in lowered}
    walk = _Graph(graph)
    taken: dict[str, FusedOp] = {}
    for op in graph.ops:
        if op.kind == "softmax":
            _attention(walk, op, wops, arch, plan, taken)
    for op in graph.ops:
        if op.kind in ("linear", "matmul") and op.name not in taken:
            _epilogue(walk, op, wops, arch, plan, taken)
    for op in graph.ops:
        if op.kind in NORM_KINDS and op.name not in taken:
            why = _rowwise(walk, op, wops, arch, plan, taken)
            if why:
                plan.refused.append(((op.name,), f"{op.kind} needs the statistics of its whole "
                                     f"{graph.tensors[op.outputs[0]].shape[-1]}-wide row before any output "
                                     f"(so no GEMM epilogue), and {why}"))
    for group in [g for g in plan.groups if g.kind == "attention"]:
        _attention_block(walk, group, wops, arch, plan, taken)
    out, emitted = [], set()
    for op, ops in lowered:
        group = taken.get(op.name)
        if group is None:
            out.extend(ops)
        elif group.name not in emitted:
            emitted.add(group.name)
            out.append(group)
    return Workload(graph.name, tuple(out)), plan


def _single(ops: list, kind):
    return ops[0] if len(ops) == 1 and isinstance(ops[0], kind) else None


def _attention(walk: _Graph, sm, wops, arch, plan: FusionPlan, taken) -> None:
    from hwsim.perf.timing import gemm_counts, vector_counts
    from hwsim.perf.workload import VectorOp

    qk = walk.source(sm.inputs[0])
    if qk is None or qk.kind != "matmul" or qk.name in taken or walk.users(qk.outputs[0]) != [sm]:
        return
    users = walk.users(sm.outputs[0])
    if len(users) != 1 or users[0].kind != "matmul" or walk.source(users[0].inputs[0]) is not sm:
        return
    pv = users[0]
    members = (qk.name, sm.name, pv.name)
    g1, v, g2 = _single(wops[qk.name], GemmOp), _single(wops[sm.name], VectorOp), _single(wops[pv.name], GemmOp)
    if g1 is None or v is None or g2 is None or g1.count != g2.count or g1.m != g2.m or g1.n != g2.k \
            or v.elements * v.count != g1.m * g1.n * g1.count:
        return
    if v.int_units:
        plan.refused.append((members, "fixed-point softmax: its integer units are priced per whole row"))
        return
    c1, c2, cs = gemm_counts(arch, g1), gemm_counts(arch, g2), vector_counts(arch, v)
    shape = AttentionShape(count=g1.count, rows=g1.m, d=g1.k, span=g1.n, dv=g2.n, a_bits=c1.ifmap_bits,
                           kv_bits=c1.weight_bits, p_bits=c2.ifmap_bits, acc_bits=c1.psum_bits,
                           out_bits=c2.out_bits, causal=bool(sm.attrs.get("causal", False)),
                           period=g1.m // int(sm.attrs.get("query_groups", 1)))
    tile, smallest = best_tile(arch, shape, c1, cs, c2)
    cap = _capacity_kib(arch)
    if tile is None:
        plan.refused.append((members, f"the smallest FlashAttention tile (Br{smallest.br} x Bc{smallest.bc}) needs "
                             f"{sum(smallest.footprint_bits) / 8192:,.0f} KiB, more than the {cap:,.0f} KiB SRAM"))
        return
    reason = (f"FlashAttention tile Br{tile.br} x Bc{tile.bc} ({sum(tile.footprint_bits) / 8192:,.0f} of {cap:,.0f} "
              f"KiB SRAM): the {g1.m}x{g1.n} scores and probabilities of each of {g1.count} products stay on chip; "
              "the softmax overlaps the array"
              + ("; kv blocks above the causal diagonal skipped" if shape.causal else ""))
    group = FusedOp(name="+".join(members), kind="attention", members=members, reason=reason, ops=(g1, v, g2),
                    shape=shape, tile=tile, count=g1.count)
    _take_if_faster(arch, plan, taken, group, [g1, v, g2])


def _capacity_kib(arch) -> float:
    return sum(arch.buffers.of(x).size_bits for x in ("ifmap", "weight", "ofmap")) / 8192


def _take_if_faster(arch, plan: FusionPlan, taken: dict, group: FusedOp, members: list) -> None:
    """Fuse ``group`` unless it is slower than its ``members`` (workload ops) unfused."""
    from hwsim.perf.fused_timing import fused_cycles
    from hwsim.perf.timing import op_counts

    fused = fused_cycles(arch, group)
    unfused = sum(op_counts(arch, w).total_cycles for w in members)
    if fused > unfused:
        plan.refused.append((group.members, f"fused {fused:,} cycles > {unfused:,} unfused: "
                             f"{group.reason.split(':')[0]}"))
        return
    _take(plan, taken, group)


def _take(plan: FusionPlan, taken: dict, group: FusedOp) -> None:
    plan.groups.append(group)
    for name in group.members:
        taken[name] = group


def _sibling(walk: _Graph, op, other, e, wops, taken) -> GemmOp | None:
    """``op`` and ``other`` concatenated along N, if they are sibling linears feeding only ``e``."""
    if other is None or other.kind != "linear" or op.kind != "linear" or other.name in taken \
            or other.inputs[0] != op.inputs[0] or walk.users(other.outputs[0]) != [e]:
        return None
    a, b = _single(wops[op.name], GemmOp), _single(wops[other.name], GemmOp)
    if a is None or b is None:
        return None
    if replace(a, name="", n=0, a_dynamic=False) != replace(b, name="", n=0, a_dynamic=False):
        return None
    return replace(a, name=f"{op.name}+{other.name}", n=a.n + b.n, a_dynamic=a.a_dynamic or b.a_dynamic)


def _epilogue(walk: _Graph, op, wops, arch, plan: FusionPlan, taken) -> None:
    from hwsim.perf.timing import gemm_counts

    gemm = _single(wops[op.name], GemmOp)
    if gemm is None:
        return
    names, inside, chain, t = [op.name], {op.name}, [], op.outputs[0]
    while True:
        users = walk.users(t)
        if len(users) != 1 or users[0].kind not in EPILOGUE_KINDS or users[0].name in taken:
            break
        e = users[0]
        ops = wops[e.name]
        if len(ops) != 1:
            break
        side = [walk.source(x) for x in e.inputs if not walk.g.tensors[x].is_weight
                and (walk.source(x) is None or walk.source(x).name not in inside)]
        if not chain and len(side) == 1 and e.kind in ("swiglu", "mul"):
            pair = _sibling(walk, op, side[0], e, wops, taken)
            if pair is not None:
                gemm = pair
                names.append(side[0].name)
                inside.add(side[0].name)
                side = []
        chain.append((e, ops[0], len(side)))
        names.append(e.name)
        inside.add(e.name)
        t = e.outputs[0]
        if e.kind == "kv_write":
            break
    if not chain:
        return
    act_bits = format_info(arch.pe.activation_format).storage_bits
    epi_bits = sum(act_bits * n for _, _, n in chain)
    fused = gemm_counts(arch, gemm, epilogue_bits=epi_bits, out_to_dram=False)
    kinds = "+".join(e.kind for e, _, _ in chain)
    if not fused.mapping_fits:
        plan.refused.append((tuple(names), f"{kinds}: no mapping of {gemm.name} fits the buffers with the "
                             f"epilogue's {epi_bits:g} extra bits per output element"))
        return
    reason = (f"{kinds} in the output stage of {gemm.name} (mapping {fused.mapping}"
              + (f", {epi_bits:g} extra bits per output for the streamed operand" if epi_bits else "")
              + f"): {len(names) - 1} intermediate tensor(s) stay on chip")
    group = FusedOp(name="+".join(names), kind="epilogue", members=tuple(names), reason=reason,
                    ops=tuple(w for _, w, _ in chain), gemm=gemm, dram_inputs=tuple(n for _, _, n in chain),
                    escapes=tuple(i == len(chain) - 1 for i in range(len(chain))), epilogue_bits=epi_bits,
                    count=gemm.count)
    members = [w for name in names for w in wops[name]]
    _take_if_faster(arch, plan, taken, group, members)


#: shares of the SRAM tried for a block's projections (the attention tiles get the rest)
SRAM_SPLITS = (0.25, 0.375, 0.5, 0.625, 0.75)


def _projection_unit(walk: _Graph, tensor: str, wops, taken):
    """The epilogue group or plain linear GemmOp producing ``tensor`` (through views), and its linear op."""
    src = walk.source(tensor)
    if src is None:
        return None, None
    group = taken.get(src.name)
    if group is not None:
        if group.kind != "epilogue" or "+" in group.gemm.name:
            return None, None
        return group, walk.g.op(group.members[0])
    if src.kind == "linear":
        return _single(wops[src.name], GemmOp), src
    return None, None


def _signature(unit) -> tuple:
    """What a block's cost depends on (names excluded), so identical layers share one search."""
    if isinstance(unit, GemmOp):
        return (replace(unit, name=""),)
    return (replace(unit.gemm, name=""), tuple(replace(o, name="") for o in unit.ops), unit.dram_inputs,
            unit.escapes, unit.epilogue_bits)


_BLOCK_CACHE: dict = {}


def _best_block(arch, att: FusedOp, subs: tuple) -> tuple[FusedOp | None, int | None]:
    """The fastest (SRAM split, attention tile) of a block of ``subs`` and ``att``, and its cycles."""
    from hwsim.perf.fused_timing import fused_cycles, projection_parts, scaled_sram
    from hwsim.perf.timing import gemm_counts, op_counts

    key = (arch, att.shape, tuple(_signature(u) for u in subs), tuple(replace(o, name="") for o in att.ops))
    if key not in _BLOCK_CACHE:
        g1, v, g2 = att.ops
        choice, choice_cycles = None, None
        for split in SRAM_SPLITS:
            parts, blocks, _ = projection_parts(arch, subs, split)
            tile, _ = best_tile(scaled_sram(arch, 1.0 - split), att.shape, gemm_counts(arch, g1), op_counts(arch, v),
                                gemm_counts(arch, g2), timing_arch=arch, with_parts=parts, blocks=blocks)
            if tile is None:
                continue
            block = FusedOp(name="block", kind="block", members=(), reason="", subs=subs,
                            attention=replace(att, tile=tile), sram_split=split, count=att.count)
            cycles = fused_cycles(arch, block)
            if choice_cycles is None or cycles < choice_cycles:
                choice, choice_cycles = (split, tile), cycles
        _BLOCK_CACHE[key] = (choice, choice_cycles)
    choice, cycles = _BLOCK_CACHE[key]
    if choice is None:
        return None, None
    split, tile = choice
    return FusedOp(name="block", kind="block", members=(), reason="", subs=subs, attention=replace(att, tile=tile),
                   sram_split=split, count=att.count), cycles


def _attention_block(walk: _Graph, att: FusedOp, wops, arch, plan: FusionPlan, taken) -> None:
    """Merge ``att`` with the q/k/v projections feeding it into a head-pipelined ``block`` (docstring)."""
    from hwsim.perf.fused_timing import fused_cycles
    from hwsim.perf.timing import op_counts

    qk, pv = walk.g.op(att.members[0]), walk.g.op(att.members[2])
    units = [_projection_unit(walk, t, wops, taken) for t in (qk.inputs[0], qk.inputs[1], pv.inputs[1])]
    if any(u is None for u, _ in units) or len({id(u) for u, _ in units}) != 3 \
            or len({lin.inputs[0] for _, lin in units}) != 1:
        return
    subs = tuple(u for u, _ in units)
    members = tuple(n for op in walk.g.ops for n in [op.name]
                    if n in {m for u, lin in units for m in (u.members if isinstance(u, FusedOp) else (lin.name,))}
                    | set(att.members))
    separate = sum(fused_cycles(arch, u) if isinstance(u, FusedOp) else op_counts(arch, u).total_cycles
                   for u in subs) + fused_cycles(arch, att)
    best, best_cycles = _best_block(arch, att, subs)
    if best is not None:
        best = replace(best, members=members)
    if best is None or best_cycles >= separate:
        why = ("no SRAM split fits both" if best is None
               else f"{best_cycles:,} cycles >= {separate:,} as separate groups")
        plan.refused.append((members, f"head-pipelined attention block: {why}"))
        return
    cap = _capacity_kib(arch)
    reason = (f"projections of the next KV heads (n-outermost, {best.sram_split * cap:,.0f} KiB SRAM) overlap the "
              f"attention of the current ones ({best.attention.tile.describe()} in {(1 - best.sram_split) * cap:,.0f} "
              f"KiB): {best_cycles:,} cycles vs {separate:,} as separate groups")
    best = replace(best, reason=reason, name="+".join(best.members))
    for unit in (*[u for u in subs if isinstance(u, FusedOp)], att):
        plan.groups.remove(unit)
    _take(plan, taken, best)


def _rowwise(walk: _Graph, norm, wops, arch, plan: FusionPlan, taken) -> str:
    """Fuse ``norm`` with the element-wise add/mul producing its input (``rowwise`` rule). Returns ""
    when a candidate was found (fused, or refused with its reason), else why there is none."""
    from hwsim.perf.workload import NormOp, VectorOp

    src = walk.source(norm.inputs[0])
    if src is None or src.kind not in ("add", "mul"):
        return "its input does not come from an element-wise add/mul"
    if src.name in taken:
        return f"its input's {src.kind} is fused into {taken[src.name].name}"
    v, n = _single(wops[src.name], VectorOp), _single(wops[norm.name], NormOp)
    if v is None or n is None or v.int_units or v.elements * v.count != n.rows * n.cols * n.count:
        return f"its input's {src.kind} does not cover the same rows (or runs on fixed-point units)"
    members = (src.name, norm.name)
    bits = format_info(arch.pe.activation_format).storage_bits
    row_bits = 2 * n.cols * bits * (v.input_tensors + 2)
    rows = int(sum(arch.buffers.of(x).size_bits for x in ("ifmap", "weight", "ofmap")) // row_bits)
    if rows < 1:
        plan.refused.append((members, f"one {n.cols}-wide row of the {src.kind} and {norm.kind} needs "
                             f"{row_bits / 8192:,.1f} KiB, more than the {_capacity_kib(arch):,.0f} KiB SRAM"))
        return ""
    rows = min(rows, n.rows * n.count)
    escapes = walk.users(src.outputs[0]) != [norm]
    reason = (f"{src.kind} then {norm.kind} on blocks of {rows} whole rows: the norm reads the sum on chip"
              + ("; the sum is still written for its other readers" if escapes else ""))
    group = FusedOp(name="+".join(members), kind="rowwise", members=members, reason=reason, ops=(v, n),
                    dram_inputs=(v.input_tensors, 0), escapes=(escapes, True), rows_per_tile=rows,
                    count=n.count)
    _take_if_faster(arch, plan, taken, group, [v, n])
    return ""
