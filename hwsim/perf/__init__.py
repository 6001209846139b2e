"""Cycle-approximate performance and energy model of a systolic MAC-array accelerator.

Modules (one concept each):

* :mod:`~hwsim.perf.arch` - architecture YAML -> validated frozen :class:`ArchSpec`
* :mod:`~hwsim.perf.workload` - GEMM / conv (lowered) / norm / softmax / element-wise / memory ops
* :mod:`~hwsim.perf.graph_costs` - graph -> workload: one cost rule per graph op kind
* :mod:`~hwsim.perf.sources` - what ``simulate`` accepts as a workload (default: the MiniLM graph)
* :mod:`~hwsim.perf.format_info` - widths and multiplier class of a format, group-scale storage
* :mod:`~hwsim.perf.dataflow` - dataflow roles of a GEMM on the array
* :mod:`~hwsim.perf.timing` - the parameterised fold/skew/tiling model (``scalesim`` and ``pipelined``)
* :mod:`~hwsim.perf.epilogue` - per-token operand quantization, group/float epilogues, requant
* :mod:`~hwsim.perf.mapper` - tiling and loop-order search of one GEMM
* :mod:`~hwsim.perf.fusion` - the operator-fusion pass over a graph (which ops run as one group, and why)
* :mod:`~hwsim.perf.flash_attention` - FlashAttention-style fused attention: tiles, footprint, counts
* :mod:`~hwsim.perf.pipeline` - latency of a fused group whose units overlap over a pipeline of tiles
* :mod:`~hwsim.perf.fused_timing` - counts, cycles and energy of a fused group from its members
* :mod:`~hwsim.perf.energy` - energy table and the pure counts x table function
* :mod:`~hwsim.perf.results` - per-op/per-run results, DataFrames, CSV/JSON
* :mod:`~hwsim.perf.api` - ``simulate(workload, arch) -> RunResult``
* :mod:`~hwsim.perf.scalesim_io`, :mod:`~hwsim.perf.scalesim_dram` - SCALE-Sim 3.0 drop-in
* :mod:`~hwsim.perf.commands` - ``hwsim run`` and ``hwsim scalesim``
"""

from hwsim.perf.api import simulate

__all__ = ["simulate"]
