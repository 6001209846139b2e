"""BLAS thread control for the command line.

hwsim's numerics are many small and medium GEMMs (per layer, per block, per format); a BLAS library
left at one thread per core spends more time waking and synchronising threads than computing, and on a
machine shared by several processes it oversubscribes the cores. :func:`limit_blas_threads` caps every
loaded BLAS/OpenMP pool (through threadpoolctl, so it works after numpy is imported) and exports the
usual environment variables so worker processes started later inherit the cap.

The cap is ``HWSIM_THREADS`` when set (a positive integer, or ``0``/``all`` for "leave the libraries
alone"), otherwise :data:`DEFAULT_THREADS`. See BENCHMARKS.md for the measurements behind the default.
"""

from __future__ import annotations

import os

#: Default BLAS threads per hwsim process (see BENCHMARKS.md, "BLAS threads").
DEFAULT_THREADS = 1

_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_STATE: dict = {"controller": None}


def requested_threads(env: dict | None = None) -> int | None:
    """Thread cap from ``HWSIM_THREADS`` (None = no cap), else :data:`DEFAULT_THREADS`.

    Raises ``ValueError`` naming the variable for anything but a non-negative integer or ``all``.
    """
    value = (os.environ if env is None else env).get("HWSIM_THREADS", "").strip().lower()
    if value == "":
        return DEFAULT_THREADS
    if value in ("0", "all"):
        return None
    if not value.isdigit():
        raise ValueError(f"HWSIM_THREADS: expected a positive integer, 0 or 'all', not {value!r}")
    return int(value)


def limit_blas_threads(threads: int | None | str = "env") -> int | None:
    """Cap BLAS/OpenMP threads of this process (and of processes it starts) to ``threads``.

    Parameters
    ----------
    threads : int, None or "env"
        The cap; ``None`` leaves the libraries alone; ``"env"`` (default) reads :func:`requested_threads`.

    Returns
    -------
    int or None
        The cap applied.
    """
    if threads == "env":
        threads = requested_threads()
    if threads is None:
        return None
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive int, None or 'env', not {threads!r}")
    for name in _ENV_VARS:
        os.environ.setdefault(name, str(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # only the environment variables (effective for libraries loaded later)
        return threads
    _STATE["controller"] = threadpool_limits(limits=threads)
    return threads
