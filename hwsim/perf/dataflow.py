"""Dataflow roles of a GEMM on a systolic array, shared by the fold model and the tiling mapper.

For ``A[M,K] @ B[K,N]`` a dataflow puts one GEMM dimension on the array rows, one on the columns and
streams the third through time; one operand stays in the PEs (see :mod:`hwsim.perf.timing`).
"""

from __future__ import annotations

#: dataflow -> (dimension on rows, dimension on cols, temporal dimension, stationary operand)
DATAFLOW_ROLES = {
    "os": ("M", "N", "K", "ofmap"),
    "ws": ("K", "N", "M", "weight"),
    "is": ("K", "M", "N", "ifmap"),
}
#: the GEMM dimension each operand lacks
MISSING_DIM = {"ifmap": "N", "weight": "M", "ofmap": "K"}


def cdiv(a: int, b: int) -> int:
    """Ceiling division of integers."""
    return -(-a // b)
