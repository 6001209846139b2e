"""Cycle-approximate performance and energy model of a systolic MAC-array accelerator.

Modules (one concept each):

* :mod:`~hwsim.perf.arch` - architecture YAML -> validated frozen :class:`ArchSpec`
* :mod:`~hwsim.perf.workload` - GEMM / conv (lowered) / norm / softmax / element-wise ops
* :mod:`~hwsim.perf.timing` - the parameterised fold/skew/tiling model (``scalesim`` and ``pipelined``)
* :mod:`~hwsim.perf.energy` - energy table and the pure counts x table function
* :mod:`~hwsim.perf.results` - per-op/per-run results, DataFrames, CSV/JSON
* :mod:`~hwsim.perf.api` - ``simulate(workload, arch) -> RunResult``
* :mod:`~hwsim.perf.scalesim_io`, :mod:`~hwsim.perf.scalesim_dram` - SCALE-Sim 3.0 drop-in
* :mod:`~hwsim.perf.commands` - ``hwsim run`` and ``hwsim scalesim``
"""

from hwsim.perf.api import simulate

__all__ = ["simulate"]
