"""The ``checkpoint`` recipe step: weights written as a real quantized checkpoint, read back, executed as stored.

For every ``linear`` of the graph the float weight is RTN-quantized in the chosen layout (GPTQ v1, AWQ GEMM,
compressed-tensors ``pack-quantized`` or ``nvfp4-pack-quantized``: :mod:`hwsim.models.checkpoints`), written
to one safetensors file in a temporary folder, read back with the layout's unpacker and attached to the
graph as the weight's QuantSpec (``uint{bits}`` codes, per-group scales and integer zero points; nvfp4: FP4
codes with scales ``s / global_scale``). The round trip is exact, so execution sees what a deployment reads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.qspec import QuantSpec


@register_step
class CheckpointRoundTrip(RecipeStep):
    name = "checkpoint"
    defaults = {"layout": "gptq", "bits": 4, "group_size": 128}

    @classmethod
    def check(cls, ck, p, path):
        from hwsim.models.checkpoints import LAYOUTS

        if p["layout"] not in LAYOUTS:
            ck.add(f"{path}.layout", f"expected one of {list(LAYOUTS)}, not {p['layout']!r}")
        if p["bits"] not in (2, 3, 4, 8):
            ck.add(f"{path}.bits", f"expected 2, 3, 4 or 8, not {p['bits']!r}")
        if not isinstance(p["group_size"], int) or p["group_size"] < 1:
            ck.add(f"{path}.group_size", f"expected a positive integer, not {p['group_size']!r}")

    def apply(self, graph, stats):
        from hwsim.models.checkpoints import read_checkpoint, write_checkpoint

        p = self.params
        linears = {op.inputs[1]: np.asarray(graph.weights[op.inputs[1]]) for op in graph.ops if op.kind == "linear"}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.safetensors"
            write_checkpoint(path, linears, p["layout"], bits=p["bits"], group_size=p["group_size"])
            stored = read_checkpoint(path, p["layout"], bits=p["bits"])
        g = graph.edit()
        for name, q in stored.items():
            g.set_quant(name, checkpoint_spec(q))
        return g


def checkpoint_spec(q) -> QuantSpec:
    """A :class:`hwsim.models.checkpoints.QuantLinear` as a weight QuantSpec (group granularity along K)."""
    if q.layout == "nvfp4-pack-quantized":
        return QuantSpec("float4_e2m1fn", "group", 0, q.group_size, scale=np.asarray(q.scales, np.float64) /
                         q.global_scale, codes=np.asarray(q.codes, np.uint8))
    zeros = None if q.zeros is None else np.asarray(q.zeros, np.int64)
    return QuantSpec(f"uint{q.bits}", "group", 0, q.group_size, scale=np.asarray(q.scales, np.float64),
                     zero_point=zeros, codes=np.asarray(q.codes, np.uint8))
