"""hwsim: co-design simulator for quantized neural-network accelerators.

Public API (stable; external checks call exactly these)::

    from hwsim import get_format, quantize_multiplier, requantize, gemm

Names are resolved lazily so ``import hwsim`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "get_format": "hwsim.formats",
    "list_formats": "hwsim.formats",
    "gemm": "hwsim.gemm",
    "quantize_multiplier": "hwsim.requant",
    "requantize": "hwsim.requant",
    "RequantSpec": "hwsim.requant",
    "simulate": "hwsim.perf.api",
    "ConfigError": "hwsim.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
