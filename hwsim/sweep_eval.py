"""Evaluate a chunk of sweep points: cached and vectorised, or one ``simulate()`` per point (reference).

A chunk is an array of point numbers (:meth:`hwsim.sweep.SweepSpec.columns`). The fast path
(:func:`evaluate_chunk`):

1. decode the chunk into per-axis value indices (numpy) and group the points by their *architecture
   combination*: every axis except the factor axes ``clock_mhz`` and ``energy.technology_scale``
   (cycles do not depend on the clock; energy is proportional to the technology scale);
2. per combination (``np.unique`` over the index rows): build and validate the architecture once,
   compute the pre-simulation columns (area, SRAM total) and evaluate the constraints;
3. simulate each surviving combination from a per-process cache keyed by (workload, architecture
   without its name): the workload's ops are de-duplicated by everything but their name (MiniLM-L6's
   87 ops are 16 distinct ones; the per-GEMM mapper search is also cached by :mod:`hwsim.perf.mapper`);
4. gather the per-combination results onto the points and apply the factor axes as numpy columns.

The reference path (:func:`evaluate_chunk_reference`) builds each point's architecture and calls
:func:`hwsim.perf.api.simulate`; both produce the same columns (tested equal).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.perf.energy import EnergyBreakdown
from hwsim.sweep import PRE_METRICS, SCALAR_KEYS, SweepSpec, _flat

__all__ = ["SweepSetup", "evaluate_chunk", "evaluate_chunk_reference"]

_ENERGY_FIELDS = tuple(f.name for f in dataclasses.fields(EnergyBreakdown))
_PERF = ("macs", "total_cycles", "compute_cycles", *(f"energy_{k}_pj" for k in _ENERGY_FIELDS))


@dataclass(frozen=True)
class SweepSetup:
    """Everything a worker needs (picklable): the spec and the workload + accuracy per (model, recipe)."""

    spec: SweepSpec
    workloads: dict  # (model, recipe label) -> (Workload, accuracy row)

    @property
    def key(self) -> str:
        return self.spec.digest()


_CACHE: dict = {}  # per process: setup key -> _Evaluator


def _evaluator(setup: SweepSetup) -> _Evaluator:
    ev = _CACHE.get(setup.key)
    if ev is None:
        _CACHE.clear()
        ev = _CACHE[setup.key] = _Evaluator(setup)
    return ev


def _signature(op):
    return dataclasses.replace(op, name="")


class _Evaluator:
    def __init__(self, setup: SweepSetup):
        self.setup = setup
        self.spec = setup.spec
        self.unique_ops = {key: Counter(_signature(op) for op in wl.ops) for key, (wl, _) in setup.workloads.items()}
        self.perf_cache: dict = {}
        self.pairs_cache: dict = {}
        keys = set(self.spec.keys)
        refs = set().union(*(e.names for _, e in self.spec.derived)) if self.spec.derived else set()
        gb = "dram.bandwidth_gb_per_s"
        clock_ok = gb not in keys and gb not in self.spec.fixed and "bandwidth_gb_per_s" not in (
            self.spec.base_arch.get("dram") or {})
        self.scalar_axes = [j for j, a in enumerate(self.spec.axes)
                            if len(a.keys) == 1 and a.keys[0] in SCALAR_KEYS and a.keys[0] not in refs
                            and (a.keys[0] != "clock_mhz" or clock_ok)]

    # -- one architecture combination -------------------------------------------------------------
    def combo(self, point: dict):
        """(arch, flat arch mapping, workload key) of one point; raises ConfigError/ValueError."""
        from hwsim.perf.arch import arch_from_dict

        data = self.spec.point_arch_dict(point)
        arch = arch_from_dict(data, source="point", base_dir=self.spec.arch_dir)
        wl_key = (str(point.get("model", "default")), _recipe(point.get("recipe")))
        return arch, _flat(data), wl_key

    def pre_metrics(self, arch, wl_key) -> dict:
        from hwsim.perf.area import arch_area, workload_pairs

        pk = (wl_key, arch.pe)
        if pk not in self.pairs_cache:
            self.pairs_cache[pk] = workload_pairs(self.setup.workloads[wl_key][0], arch)
        area = arch_area(arch, self.pairs_cache[pk])
        bufs = arch.buffers
        return {**area, "sram_total_kib": bufs.ifmap.size_kib + bufs.weight.size_kib + bufs.ofmap.size_kib,
                "pes": arch.array.rows * arch.array.cols}

    def perf(self, arch, wl_key) -> tuple[float, ...]:
        """(macs, total_cycles, compute_cycles, energy by component) of the workload on ``arch``.

        Cached per (workload, arch); the caller passes the arch with its name blanked and the factor
        fields normalised so points differing only in those share one entry.
        """
        from hwsim.perf.api import energy_table_for, evaluate_op

        key = (wl_key, arch)
        hit = self.perf_cache.get(key)
        if hit is not None:
            return hit
        table = energy_table_for(arch)
        acc = np.zeros(len(_PERF))
        for op, mult in self.unique_ops[wl_key].items():
            layer = evaluate_op(op, arch, table, self.spec.mode)
            c, e = layer.counts, layer.energy
            acc += mult * np.array([c.macs, c.total_cycles, c.compute_cycles,
                                    *(getattr(e, k) for k in _ENERGY_FIELDS)], dtype=np.float64)
        out = tuple(acc.tolist())
        self.perf_cache[key] = out
        return out


def _recipe(value) -> str:
    from hwsim.sweep_models import recipe_label

    return recipe_label(value)


def _value_hashes(spec: SweepSpec) -> list[np.ndarray]:
    """Per axis: a 64-bit hash of ``key=value`` for each of its values (keys and values as JSON)."""
    out = []
    for a in spec.axes:
        hashes = []
        for value in a.values:
            text = json.dumps(dict(zip(a.keys, value, strict=True)), sort_keys=True, default=str)
            hashes.append(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little"))
        out.append(np.array(hashes, dtype=np.uint64))
    return out


_FNV_PRIME = np.uint64(0x100000001B3)


def point_hashes(spec: SweepSpec, numbers: np.ndarray) -> np.ndarray:
    """64-bit hash of each point's axis values (the store's key of a point; independent of its number).

    Each axis value has a BLAKE2b hash of ``{key: value}``; a point folds its values' hashes in axis
    order (FNV-1a style multiply/xor in uint64), vectorised over the chunk.
    """
    idx = spec.axis_indices(np.asarray(numbers, dtype=np.int64))
    h = np.full(len(idx), np.uint64(0xCBF29CE484222325), dtype=np.uint64)
    for j, table in enumerate(_value_hashes(spec)):
        h = (h ^ table[idx[:, j]]) * _FNV_PRIME
    return h


def _finish(frame_cols: dict, setup: SweepSetup, n: int):
    """Derived columns common to both paths; returns a DataFrame."""
    import pandas as pd

    f = pd.DataFrame(frame_cols)
    f["energy_uj"] = f["energy_total_pj"] * 1e-6
    cyc = f["total_cycles"].to_numpy(dtype=np.float64)
    lat = f["latency_us"].to_numpy(dtype=np.float64)
    e = f["energy_total_pj"].to_numpy(dtype=np.float64)
    macs = f["macs"].to_numpy(dtype=np.float64)
    pes = f["pes"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        f["utilization"] = np.where(cyc > 0, macs / (cyc * pes), np.nan)
        f["tops"] = np.where(lat > 0, 2 * macs / (lat * 1e6), np.nan)
        f["tops_per_w"] = np.where(e > 0, 2 * macs / e, np.nan)
        f["power_w"] = np.where(lat > 0, e * 1e-12 / (lat * 1e-6), np.nan)
    f["edp"] = f["energy_uj"] * f["latency_us"]
    return f


def evaluate_chunk(setup: SweepSetup, numbers) -> object:
    """Evaluate the points ``numbers`` (cached/vectorised path); a DataFrame, one row per kept point.

    Points dropped by a constraint are absent; a point whose architecture is invalid (a combination
    of values each valid alone) or whose workload the PE cannot run has its message in ``error``.
    """
    ev = _evaluator(setup)
    spec = setup.spec
    numbers = np.asarray(numbers, dtype=np.int64)
    idx = spec.axis_indices(numbers)
    combo_axes = [j for j in range(len(spec.axes)) if j not in ev.scalar_axes]
    uniq, inverse = np.unique(idx[:, combo_axes], axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    cols = spec.columns(numbers)
    n_c = len(uniq)
    pre = {k: np.full(n_c, np.nan) for k in PRE_METRICS}
    perf = np.full((n_c, len(_PERF)), np.nan)
    errors = np.full(n_c, "", dtype=object)
    flats: list[dict] = [{}] * n_c
    archs: list = [None] * n_c
    wl_keys: list = [None] * n_c
    first_rows = np.zeros(n_c, dtype=np.int64)
    first_rows[inverse[::-1]] = np.arange(len(numbers))[::-1]
    for c in range(n_c):
        point = spec.point(int(numbers[first_rows[c]]))
        try:
            archs[c], flats[c], wl_keys[c] = ev.combo(point)
            for k, v in ev.pre_metrics(archs[c], wl_keys[c]).items():
                pre[k][c] = v
        except (ConfigError, ValueError, ArithmeticError, TypeError) as exc:
            errors[c] = str(exc).splitlines()[0][:300]
    keep = np.ones(len(numbers), dtype=bool)
    if spec.constraints:
        scope = {k: np.array([f.get(k, np.nan) for f in flats], dtype=object)[inverse] for k in
                 set().union(*(e.names for e in spec.constraints)) if k not in cols and k not in pre}
        scope.update(cols)
        scope.update({k: v[inverse] for k, v in pre.items()})
        for expr in spec.constraints:
            with np.errstate(invalid="ignore"):
                ok = np.asarray(expr.evaluate(scope), dtype=bool)
            keep &= np.broadcast_to(ok, keep.shape) | (errors[inverse] != "")
    alive = np.zeros(n_c, dtype=bool)
    alive[np.unique(inverse[keep])] = True
    scalar_keys = {spec.axes[j].keys[0] for j in ev.scalar_axes}
    norm = {"clock_mhz": 1.0} if "clock_mhz" in scalar_keys else {}
    if "energy.technology_scale" in scalar_keys:
        norm["technology_scale"] = 1.0
    for c in np.flatnonzero(alive & (errors == "")):
        try:
            perf[c] = ev.perf(archs[c].with_(name="", **norm), wl_keys[c])
        except (ValueError, ConfigError) as exc:
            errors[c] = str(exc).splitlines()[0][:300]
    rows = np.flatnonzero(keep)
    inv = inverse[rows]
    clock = np.array([a.clock_mhz if a is not None else np.nan for a in archs])[inv]
    if "clock_mhz" in scalar_keys:
        clock = cols["clock_mhz"][rows].astype(np.float64)
    factor = np.ones(len(rows))
    if "energy.technology_scale" in scalar_keys:  # energy was evaluated at technology_scale 1
        factor = cols["energy.technology_scale"][rows].astype(np.float64)
    out = {"point": numbers[rows], "point_hash": point_hashes(spec, numbers[rows])}
    for k, v in cols.items():
        out[k] = v[rows]
    if "model" not in out:
        out["model"] = np.array([k[0] if k else "" for k in wl_keys], dtype=object)[inv]
    p = perf[inv]
    out["macs"], out["total_cycles"], out["compute_cycles"] = p[:, 0], p[:, 1], p[:, 2]
    out["latency_us"] = p[:, 1] / clock
    energy = p[:, 3:] * factor[:, None]
    for j, k in enumerate(_ENERGY_FIELDS):
        out[f"energy_{k}_pj"] = energy[:, j]
    out["energy_total_pj"] = energy.sum(axis=1)
    for k, v in pre.items():
        out[k] = v[inv]
    out.update(_gather_accuracy(setup, wl_keys, inv))
    out["error"] = errors[inv]
    return _finish(out, setup, len(rows))


def _gather_accuracy(setup: SweepSetup, wl_keys: list, inv: np.ndarray) -> dict:
    names = sorted({k for _, row in setup.workloads.values() for k in row})
    out = {}
    for name in names:
        vals = [setup.workloads[k][1].get(name, np.nan) if k is not None else np.nan for k in wl_keys]
        arr = np.array(vals, dtype=object if any(isinstance(v, str) for v in vals) else np.float64)
        out[name] = arr[inv] if len(arr) else arr
    if "accuracy" not in out and setup.spec.has_accuracy:
        out["accuracy"] = np.full(len(inv), np.nan)
    return out


def evaluate_chunk_reference(setup: SweepSetup, numbers) -> object:
    """The same table as :func:`evaluate_chunk`, one architecture build and ``simulate()`` per point."""
    from hwsim.perf.api import simulate

    ev = _Evaluator(setup)
    spec = setup.spec
    numbers = np.asarray(numbers, dtype=np.int64)
    cols = spec.columns(numbers)
    records = []
    perf_log = logging.getLogger("hwsim.perf")
    level, perf_log.level = perf_log.level, logging.ERROR  # per-point arch warnings are not sweep output
    for i, n in enumerate(numbers.tolist()):
        point = spec.point(n)
        rec: dict = {"point": n}
        try:
            arch, flat, wl_key = ev.combo(point)
            pre = ev.pre_metrics(arch, wl_key)
            scope = {**flat, **point, **pre}
            if not all(bool(e.evaluate(scope)) for e in spec.constraints):
                continue
            s = simulate(setup.workloads[wl_key][0], arch, mode=spec.mode).summary()
            rec.update(pre)
            rec.update({"macs": s["macs"], "total_cycles": s["total_cycles"], "compute_cycles": s["compute_cycles"],
                        "latency_us": s["latency_us"], "energy_total_pj": s["energy_total_pj"],
                        **{f"energy_{k}_pj": v for k, v in s["energy_breakdown_pj"].items()},
                        **setup.workloads[wl_key][1], "error": ""})
        except (ConfigError, ValueError) as exc:
            rec.update({k: np.nan for k in (*PRE_METRICS, *_PERF, "latency_us", "energy_total_pj")})
            rec["error"] = str(exc).splitlines()[0][:300]
        rec["_row"] = i
        records.append(rec)
    perf_log.setLevel(level)
    import pandas as pd

    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    rows = frame.pop("_row").to_numpy()
    for k, v in cols.items():
        frame[k] = v[rows]
    frame["point_hash"] = point_hashes(spec, numbers[rows])
    if "model" not in cols:
        frame["model"] = "default"
    return _finish({c: frame[c].to_numpy() for c in frame.columns}, setup, len(frame))
