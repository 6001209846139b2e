"""hwsim: co-design simulator for quantized neural-network accelerators.

Public API (stable; external checks call exactly these)::

    from hwsim import get_format, quantize_multiplier, requantize, gemm

The four numerics entry points are imported eagerly: ``hwsim.gemm`` is also the name of the module
that defines :func:`gemm`, and binding the function here, after the module loaded, keeps
``from hwsim import gemm`` the function whatever was imported first.  Other names resolve lazily.
"""

from __future__ import annotations

import importlib

from hwsim import _startup  # noqa: F401  (first: Ctrl-C while the CLI starts is one line, exit 130)
from hwsim import mx as _mx  # noqa: F401  (registers the MX block formats in the format registry)
from hwsim import quantile as _quantile  # noqa: F401  (resolves quantileK / fitted codebook names)
from hwsim.formats import get_format as get_format
from hwsim.gemm import gemm as gemm
from hwsim.requant import quantize_multiplier as quantize_multiplier
from hwsim.requant import requantize as requantize

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


def __getattr__(name: str):  # names not imported above
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
