"""Everything :func:`hwsim.perf.api.simulate` accepts as a workload, resolved to a :class:`Workload`.

A :class:`~hwsim.perf.workload.Workload`, one op or a list of ops, a mapping (workload YAML schema), a
path (workload YAML, or a SCALE-Sim topology CSV read by :mod:`hwsim.perf.scalesim_io`), a
:class:`hwsim.graph.Graph` (lowered by :mod:`hwsim.perf.graph_costs`) or ``None``: the default
workload, MiniLM-L6 at batch 1 and 128 tokens built by the same graph builder ``hwsim run`` executes
(:func:`hwsim.models.minilm.build_graph`, shapes only, unquantized: priced at the PE defaults).
"""

from __future__ import annotations

from pathlib import Path

from hwsim.perf.config_checks import load_yaml_mapping
from hwsim.perf.graph_costs import workload_from_graph
from hwsim.perf.workload import GemmOp, MemoryOp, NormOp, VectorOp, Workload, workload_from_dict

#: Shape of the default workload: (batch, tokens) of MiniLM-L6.
DEFAULT_SHAPE = (1, 128)


def load_workload(path) -> Workload:
    """Read a workload YAML, or a SCALE-Sim topology CSV (``.csv``: conv or GEMM mode, detected)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        from hwsim.perf.scalesim_io import read_topology

        return read_topology(path).to_workload()
    return workload_from_dict(load_yaml_mapping(path, what="workload"), source=str(path))


def default_graph():
    """The MiniLM-L6 graph of the default workload (shapes only; no weight files needed)."""
    from hwsim.models.minilm import MINILM_L6, build_graph

    batch, seq = DEFAULT_SHAPE
    return build_graph(MINILM_L6, None, batch, seq, name=f"minilm-l6-seq{seq}")


def default_workload() -> Workload:
    """The default workload: :func:`default_graph` through its cost rules."""
    return workload_from_graph(default_graph())


def as_workload(workload) -> Workload:
    """Accept a :class:`Workload`, an op, a list of ops, a mapping, a path, a Graph or ``None`` (default)."""
    if workload is None:
        return default_workload()
    if isinstance(workload, Workload):
        return workload
    if isinstance(workload, (GemmOp, NormOp, VectorOp, MemoryOp)):
        return Workload(workload.name, (workload,))
    if isinstance(workload, (list, tuple)):
        return Workload("ops", tuple(workload))
    if isinstance(workload, dict):
        return workload_from_dict(workload)
    if isinstance(workload, (str, Path)):
        return load_workload(workload)
    if hasattr(workload, "ops") and hasattr(workload, "tensors"):
        return workload_from_graph(workload)
    raise TypeError(f"workload must be a Workload, a list of ops, a mapping, a path or a Graph, "
                    f"not {workload!r}")
