"""Design-space sweeps: a grid of architecture variations, one :func:`hwsim.perf.api.simulate` each.

A sweep file (YAML, ``version: 1``)::

    name: edge-array-sweep
    arch: default                 # or a path (relative to this file) to an architecture YAML
    workload: default             # or a workload YAML / SCALE-Sim topology CSV
    mode: pipelined               # optional: pipelined | scalesim
    grid:                         # cartesian product over dotted architecture keys
      array.rows: [16, 32, 64]
      array.cols: [16, 32, 64]
      array.dataflow: [ws, os]
      pe.weight_format: [int8, int4]

Every point is validated before any is simulated; all problems are reported together, each with the
sweep file, the grid point and the architecture key path.  The result is one row per point: the grid
values, the run summary (cycles, latency, energy, TOPS/W ...) and ``pareto``, true where no other point
has both lower-or-equal latency and lower-or-equal energy (and one strictly lower).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import MAX_LISTED, ConfigError, short_repr, short_text
from hwsim.limits import budget, limit_message
from hwsim.progress import track
from hwsim.safe_yaml import load_yaml_mapping

__all__ = ["SweepSpec", "load_sweep", "pareto_mask", "run_sweep", "sweep_from_dict"]

_TOP_KEYS = ("version", "name", "arch", "workload", "mode", "grid")
_DEFAULT_ARCH = Path(__file__).resolve().parent / "data" / "default_arch.yaml"


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A validated sweep: base architecture mapping, workload source and the grid."""

    name: str
    base_arch: dict
    arch_dir: Path | None
    workload: str | None
    mode: str | None
    grid: tuple[tuple[str, tuple], ...]
    source: str

    @property
    def size(self) -> int:
        """Number of grid points (the product of the axis lengths)."""
        return math.prod(len(v) for _, v in self.grid)

    def points(self) -> Iterator[dict]:
        """Every grid point as ``{dotted_key: value}`` in row-major order of the grid keys (lazily)."""
        keys = [k for k, _ in self.grid]
        return (dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in self.grid)))


def _read_yaml(path: Path, what: str) -> dict:
    return load_yaml_mapping(path, what=what)


def load_sweep(path) -> SweepSpec:
    """Read and validate a sweep YAML file."""
    path = Path(path)
    return sweep_from_dict(_read_yaml(path, "sweep"), source=str(path), base_dir=path.parent)


def _resolve(value, base_dir: Path | None) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate


def sweep_from_dict(data: dict, *, source: str = "<dict>", base_dir: Path | None = None) -> SweepSpec:
    """Validate a parsed sweep mapping (problems collected with their key paths)."""
    problems = [f"sweep.{key}: unknown key; expected one of {', '.join(_TOP_KEYS)}, not {short_repr(key)}"
                for key in data if key not in _TOP_KEYS]
    if data.get("version", 1) != 1:
        problems.append(f"sweep.version: expected 1, not {short_repr(data.get('version'))}")
    arch_value = data.get("arch", "default")
    arch_path = _DEFAULT_ARCH if arch_value == "default" else _resolve(arch_value, base_dir)
    base_arch: dict = {}
    if not isinstance(arch_value, str):
        problems.append(f"sweep.arch: expected 'default' or a path, not {short_repr(arch_value)}")
    elif not arch_path.is_file():
        problems.append(f"sweep.arch: architecture file not found, not {short_repr(str(arch_path))}")
    else:
        base_arch = _read_yaml(arch_path, "arch")
    workload = data.get("workload", "default")
    if workload != "default" and not (isinstance(workload, str) and _resolve(workload, base_dir).is_file()):
        problems.append(f"sweep.workload: expected 'default' or an existing file, not {short_repr(workload)}")
    mode = data.get("mode")
    if mode not in (None, "pipelined", "scalesim"):
        problems.append(f"sweep.mode: expected 'pipelined' or 'scalesim', not {short_repr(mode)}")
    grid = data.get("grid")
    entries: list[tuple[str, tuple]] = []
    if not isinstance(grid, dict) or not grid:
        problems.append(f"sweep.grid: expected a non-empty mapping of dotted arch keys to lists, "
                        f"not {short_repr(grid)}")
    else:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                problems.append(f"sweep.grid.{key}: expected a non-empty list of values, not {short_repr(values)}")
            else:
                entries.append((str(key), tuple(values)))
        size = math.prod(len(v) for _, v in entries)
        if size > budget("SWEEP_POINTS"):
            problems.append(f"sweep.grid: {limit_message('SWEEP_POINTS', size, 'grid points')}")
    if problems:
        raise ConfigError(source, problems)
    return SweepSpec(name=str(data.get("name", Path(source).stem)), base_arch=base_arch,
                     arch_dir=arch_path.parent,
                     workload=None if workload == "default" else str(_resolve(workload, base_dir)),
                     mode=mode, grid=tuple(entries), source=source)


def _set_dotted(mapping: dict, dotted: str, value) -> None:
    node = mapping
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def _label(point: dict) -> str:
    return ", ".join(f"{k}={short_text(str(v), 60)}" for k, v in point.items())


def build_archs(spec: SweepSpec) -> list:
    """Validate every grid point's architecture; raise one ConfigError listing every bad point."""
    from hwsim.perf.arch import arch_from_dict

    archs, problems = [], []
    for index, point in enumerate(spec.points()):
        data = copy.deepcopy(spec.base_arch)
        for key, value in point.items():
            _set_dotted(data, key, value)
        data["name"] = f"{spec.name}#{index}"
        try:
            archs.append(arch_from_dict(data, source=f"point {index}", base_dir=spec.arch_dir))
        except ConfigError as exc:
            problems += [f"sweep.grid point {index} ({_label(point)}): {p}" for p in exc.problems]
            if len(problems) > MAX_LISTED:  # enough to fix the file; do not validate 10^5 broken points
                break
    if problems:
        raise ConfigError(spec.source, problems)
    return archs


def pareto_mask(latency, energy) -> list[bool]:
    """True for points not dominated in (latency, energy), both to be minimised; O(n log n).

    A point with a NaN or infinite coordinate is never on the front (it is not a measured trade-off).
    """
    import numpy as np

    lat, en = np.asarray(latency, dtype=np.float64), np.asarray(energy, dtype=np.float64)
    if lat.shape != en.shape:
        raise ValueError(f"latency and energy must have the same length, not {lat.size} and {en.size}")
    finite = np.isfinite(lat) & np.isfinite(en)
    mask = np.zeros(lat.size, dtype=bool)
    idx = np.flatnonzero(finite)
    if idx.size:
        order = idx[np.lexsort((en[idx], lat[idx]))]  # by latency, then energy
        sl, se = lat[order], en[order]
        starts = np.flatnonzero(np.r_[True, sl[1:] != sl[:-1]])  # first point of each equal-latency group
        group_min = np.minimum.reduceat(se, starts)
        # lowest energy among points of strictly lower latency, per group
        before = np.r_[np.inf, np.minimum.accumulate(group_min)[:-1]]
        sizes = np.diff(np.r_[starts, sl.size])
        keep = (se == np.repeat(group_min, sizes)) & (se < np.repeat(before, sizes))
        mask[order] = keep
    return mask.tolist()


def run_sweep(spec: SweepSpec, *, progress=None):
    """Simulate every point; return a DataFrame with one row per point (grid values + summary + pareto)."""
    import pandas as pd

    from hwsim.perf.api import simulate
    from hwsim.perf.sources import as_workload

    archs = build_archs(spec)
    workload = as_workload(spec.workload)
    rows = []
    points = zip(spec.points(), archs, strict=True)
    for index, (point, arch) in enumerate(track(points, f"sweep {spec.name}", total=len(archs), unit="point")):
        summary = simulate(workload, arch, mode=spec.mode).summary()
        scalars = {k: v for k, v in summary.items() if not isinstance(v, dict)}
        breakdown = {f"energy_{k}_pj": v for k, v in summary.get("energy_breakdown_pj", {}).items()}
        rows.append({"point": index, **point, **scalars, **breakdown})
        if progress is not None:
            progress(index + 1, len(archs))
    frame = pd.DataFrame(rows)
    frame["pareto"] = pareto_mask(frame["latency_us"], frame["energy_total_pj"])
    return frame
