"""tests/core: independent verification of the core numerics (formats, MX, quantize, GEMM, requant).

Shared scalar references and the hypothesis settings live in ``core_reference.py`` next to this file.
"""
