"""Calibration: one observer over graph execution that collects the statistics recipes declare they need.

:func:`calibrate` runs the float reference executor (:class:`hwsim.float_executor.FloatBackend`) over
calibration batches and, for every op output (and graph input), streams:

* ``amax``: max |x| per tensor; ``amax_channel``: max |x| per index of the last axis;
* ``minmax_channel``: min and max per index of the last axis (data shifting);
* ``input_rows``: a strided sample (64 rows per sequence, starting at row 0: BOS rows are kept) of the rows
  of each ``linear`` input, thinned to at most :data:`ROW_SAMPLE` rows, for searches with quantization in
  the loop;
* ``minmax``: min and max per tensor;
* ``percentile``: a bounded sample of |x| (at most :data:`SAMPLE_SIZE` values per tensor, strided so it is
  deterministic) from which :meth:`CalibrationStats.percentile` reads quantiles;
* ``xtx``: ``Σ xᵀx`` over the rows of each ``linear`` input (``K x K`` float64, memory bounded by the
  largest K²), plus the row count — GPTQ's Hessian is ``2 XᵀX / rows``;
* ``absmean_channel``: mean |x| per channel of each linear input (AWQ's activation salience).

Memory is bounded per tensor (no activations are kept). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STATISTICS = frozenset({"amax", "amax_channel", "minmax", "minmax_channel", "percentile", "xtx",
                        "absmean_channel", "input_rows"})
ROW_SAMPLE = 512
SAMPLE_SIZE = 1 << 15


@dataclass
class CalibrationStats:
    """Streamed statistics by tensor name (see the module docstring)."""

    amax: dict = field(default_factory=dict)
    amax_channel: dict = field(default_factory=dict)
    minimum: dict = field(default_factory=dict)
    maximum: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    xtx: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    abssum_channel: dict = field(default_factory=dict)
    min_channel: dict = field(default_factory=dict)
    input_rows: dict = field(default_factory=dict)
    max_channel: dict = field(default_factory=dict)
    collected: frozenset = frozenset()

    def require(self, tensor: str, what: str = "amax") -> None:
        table = {"amax": self.amax, "amax_channel": self.amax_channel, "minmax": self.minimum,
                 "percentile": self.samples,
                 "minmax_channel": self.min_channel,
                 "input_rows": self.input_rows, "xtx": self.xtx, "absmean_channel": self.abssum_channel}[what]
        if tensor not in table:
            raise ValueError(f"tensor {tensor!r} has no {what!r} calibration statistics; calibrate this graph "
                             f"with {what!r} first")

    def percentile(self, tensor: str, q: float) -> float:
        """``q``-th percentile (0..100) of |x| over the sampled values of ``tensor``."""
        self.require(tensor, "percentile")
        return float(np.percentile(np.concatenate(self.samples[tensor]), q))

    def absmean_channel(self, tensor: str) -> np.ndarray:
        self.require(tensor, "absmean_channel")
        return self.abssum_channel[tensor] / max(self.rows[tensor], 1)

    def hessian(self, tensor: str) -> np.ndarray:
        """GPTQ's ``H = 2 XᵀX / rows`` of a linear input."""
        self.require(tensor, "xtx")
        return 2.0 * self.xtx[tensor] / max(self.rows[tensor], 1)


def _observe(stats: CalibrationStats, need: frozenset, name: str, value, linear_input: bool) -> None:
    x = np.asarray(value)
    if x.dtype.kind not in "f" or x.size == 0:
        return
    x = x.astype(np.float64, copy=False)
    a = np.abs(x)
    if "amax" in need:
        stats.amax[name] = max(stats.amax.get(name, 0.0), float(a.max()))
    if "amax_channel" in need and x.ndim >= 2:
        per = a.reshape(-1, x.shape[-1]).max(axis=0)
        stats.amax_channel[name] = np.maximum(stats.amax_channel.get(name, 0.0), per)
    if "minmax_channel" in need and x.ndim >= 2:
        rows = x.reshape(-1, x.shape[-1])
        stats.min_channel[name] = np.minimum(stats.min_channel.get(name, np.inf), rows.min(axis=0))
        stats.max_channel[name] = np.maximum(stats.max_channel.get(name, -np.inf), rows.max(axis=0))
    if "minmax" in need:
        stats.minimum[name] = min(stats.minimum.get(name, np.inf), float(x.min()))
        stats.maximum[name] = max(stats.maximum.get(name, -np.inf), float(x.max()))
    if "percentile" in need:
        flat = a.reshape(-1)
        step = max(1, flat.size // SAMPLE_SIZE)
        chunks = stats.samples.setdefault(name, [])
        chunks.append(flat[::step][:SAMPLE_SIZE].copy())
        if sum(c.size for c in chunks) > 4 * SAMPLE_SIZE:  # keep memory bounded: thin the sample
            stats.samples[name] = [np.concatenate(chunks)[::4]]
    if linear_input and x.ndim >= 2 and "input_rows" in need:
        per_seq = x.reshape(-1, x.shape[-2], x.shape[-1]) if x.ndim >= 3 else x[None]
        step = max(1, per_seq.shape[1] // 64)
        sample = per_seq[:, ::step].reshape(-1, x.shape[-1])
        kept = np.concatenate([stats.input_rows[name], sample]) if name in stats.input_rows else sample
        stats.input_rows[name] = kept if len(kept) <= ROW_SAMPLE else kept[:: -(-len(kept) // ROW_SAMPLE)]
    if linear_input and x.ndim >= 2 and ("xtx" in need or "absmean_channel" in need):
        rows = x.reshape(-1, x.shape[-1])
        stats.rows[name] = stats.rows.get(name, 0) + rows.shape[0]
        if "xtx" in need:
            stats.xtx[name] = stats.xtx.get(name, 0.0) + rows.T @ rows
        if "absmean_channel" in need:
            stats.abssum_channel[name] = stats.abssum_channel.get(name, 0.0) + np.abs(rows).sum(axis=0)


def calibrate(graph, batches, need=("amax", "amax_channel", "minmax")) -> CalibrationStats:
    """Run ``graph`` in float on each feed dict of ``batches`` and collect the ``need`` statistics.

    Parameters
    ----------
    graph : Graph
        Any graph the float executor runs (shape-agnostic: batches may have other lengths).
    batches : iterable of dict
        Feed dicts ``{input name: array}``.
    need : iterable of str
        Statistics to collect, from :data:`STATISTICS`.
    """
    from hwsim.float_executor import FloatBackend, run_graph

    need = frozenset(need)
    unknown = sorted(need - STATISTICS)
    if unknown:
        raise ValueError(f"calibration statistics must be among {sorted(STATISTICS)}, not {unknown!r}")
    stats = CalibrationStats(collected=need)
    linear_inputs = {op.inputs[0] for op in graph.ops if op.kind == "linear"}

    def observer(op, value):
        name = op.outputs[0]
        _observe(stats, need, name, value, name in linear_inputs)

    for feeds in batches:
        for name in graph.inputs:
            if name in feeds:
                _observe(stats, need, name, feeds[name], name in linear_inputs)
        run_graph(graph, feeds, FloatBackend(), observer=observer)
    return stats
