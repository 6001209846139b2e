"""Sweep specs: one YAML for the design space of models x recipes x architectures.

A sweep file (``version: 1``)::

    name: joint
    arch: default                  # base architecture: "default" or a YAML path (relative to this file)
    workload: default              # points without a ``model`` axis: "default" (MiniLM-L6) or a workload file
    mode: pipelined                # optional timing mode override: pipelined | scalesim
    set: {energy.sram: capacity}   # fixed architecture overrides (dotted keys)
    grid:                          # axes; the design space is their cartesian product
      model: [minilm]              # minilm | smollm2 | default | llm:NAME | a workload YAML/CSV
      recipe: [w8a8, w4a8, fp8]    # a preset name, a recipe YAML path, or an inline recipe mapping
      array.rows: [16, 32, 64]
      array.cols: [16, 32, 64]
      array.dataflow: [ws, os]
    link: [[array.rows, array.cols]]   # zip groups: these axes vary together (equal lengths)
    derived: {buffers.ifmap.size_kib: "buffers.weight.size_kib / 2"}
    constraints: ["area_mm2 <= 4", "sram_total_kib <= 1024"]
    search: {method: grid}         # or {method: random, samples: 1000, seed: 0}
                                   # or {method: nsga2, trials: 200, population: 20, seed: 0} (optuna)
    objectives: {accuracy: max, latency_us: min, energy_uj: min, area_mm2: min}
    models: {minilm: {sentences: 8, calib_sentences: 8, layers: null}}
    chunk_size: 2000

Expressions (``derived``, ``constraints``) are :mod:`hwsim.sweep_expr`'s. Constraint names: axis, ``set``
and ``derived`` keys, resolved architecture fields (``buffers.ifmap.size_kib``) and the pre-simulation
columns ``area_mm2``, ``area_array_mm2``, ``area_sram_mm2``, ``pe_nand2``, ``sram_total_kib``, ``pes``;
points that violate one are dropped before they are simulated.

Validation happens once per axis value (not per point): each value is tried on the first point, and a
problem is reported once with the number of points it affects. Points are numbered in row-major order
of the axes (the last axis varies fastest); :meth:`SweepSpec.columns` decodes an array of point
numbers into axis-value columns without materialising the grid.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import MAX_LISTED, ConfigError, short_repr
from hwsim.limits import budget, limit_message
from hwsim.pareto import pareto_mask
from hwsim.safe_yaml import load_yaml_mapping
from hwsim.sweep_expr import Expression, ExpressionError

__all__ = ["Axis", "SweepSpec", "load_sweep", "pareto_mask", "sweep_from_dict"]

_TOP_KEYS = ("version", "name", "arch", "workload", "mode", "set", "grid", "link", "derived", "constraints",
             "search", "objectives", "models", "chunk_size")
_DEFAULT_ARCH = Path(__file__).resolve().parent / "data" / "default_arch.yaml"
#: columns known before simulation (constraints may use them)
PRE_METRICS = ("area_mm2", "area_array_mm2", "area_sram_mm2", "pe_nand2", "sram_total_kib", "pes")
#: columns the objectives may name
OBJECTIVE_COLUMNS = ("accuracy", "latency_us", "energy_uj", "area_mm2", "total_cycles", "energy_total_pj",
                     "tops_per_w", "tops", "power_w", "utilization", "area_array_mm2", "area_sram_mm2", "edp")
DEFAULT_OBJECTIVES = {"accuracy": "max", "latency_us": "min", "energy_uj": "min", "area_mm2": "min"}
ACCURACY_MODELS = ("minilm", "smollm2")
SEARCH_METHODS = ("grid", "random", "nsga2")
#: keys whose effect on the result is a factor (evaluated per point, not per architecture)
SCALAR_KEYS = ("clock_mhz", "energy.technology_scale")


@dataclass(frozen=True)
class Axis:
    """One independent axis of the grid: ``keys`` vary together through ``values`` (tuples)."""

    keys: tuple[str, ...]
    values: tuple[tuple, ...]


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A validated sweep (see module docstring)."""

    name: str
    base_arch: dict
    arch_dir: Path | None
    workload: str | None
    mode: str | None
    fixed: dict
    axes: tuple[Axis, ...]
    derived: tuple[tuple[str, Expression], ...]
    constraints: tuple[Expression, ...]
    search: dict
    objectives: dict
    models: dict
    chunk_size: int
    source: str
    data: dict = field(default_factory=dict, compare=False)

    @property
    def size(self) -> int:
        """Number of grid points (the product of the axis lengths)."""
        return math.prod(len(a.values) for a in self.axes)

    @property
    def keys(self) -> list[str]:
        return [k for a in self.axes for k in a.keys]

    @property
    def grid(self) -> tuple[tuple[str, tuple], ...]:
        """``(key, values)`` per key (linked keys repeat their group's values)."""
        return tuple((k, tuple(v[i] for v in a.values)) for a in self.axes for i, k in enumerate(a.keys))

    def strides(self) -> list[int]:
        out, s = [], 1
        for a in reversed(self.axes):
            out.append(s)
            s *= len(a.values)
        return out[::-1]

    def axis_indices(self, points: np.ndarray) -> np.ndarray:
        """(n, axes) value index of each axis for each point number."""
        points = np.asarray(points, dtype=np.int64)
        return np.stack([(points // s) % len(a.values) for a, s in zip(self.axes, self.strides(), strict=True)],
                        axis=1) if self.axes else np.zeros((len(points), 0), dtype=np.int64)

    def columns(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """Axis values of each point as columns (dotted key -> array)."""
        idx = self.axis_indices(points)
        out = {}
        for j, a in enumerate(self.axes):
            for i, key in enumerate(a.keys):
                vals = [v[i] for v in a.values]
                table = np.empty(len(vals), dtype=object)
                table[:] = [json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for v in vals]
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                    table = np.asarray(vals)
                out[key] = table[idx[:, j]]
        return out

    def point(self, number: int) -> dict:
        """The axis values of one point number (raw values: inline recipes stay mappings)."""
        idx = self.axis_indices(np.array([number]))[0]
        return {k: a.values[j][i] for a, j in zip(self.axes, idx, strict=True) for i, k in enumerate(a.keys)}

    def point_arch_dict(self, point: dict) -> dict:
        """Base architecture + ``set`` + the point's arch keys + derived keys, as a mapping."""
        data = copy.deepcopy(self.base_arch)
        values = {**self.fixed, **{k: v for k, v in point.items() if k not in ("model", "recipe")}}
        for key, value in values.items():
            _set_dotted(data, key, value)
        scope = {**values, **_flat(data)}
        for key, expr in self.derived:
            value = expr.evaluate(scope)
            value = value.item() if isinstance(value, np.generic) else value
            _set_dotted(data, key, value)
            scope[key] = value
        return data

    def digest(self) -> str:
        """Hash of everything that determines the results (the store refuses another spec's chunks)."""
        return hashlib.sha256(json.dumps(self.data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def has_accuracy(self) -> bool:
        models = self.axis_values("model") or ["default"]
        return bool(self.axis_values("recipe")) and any(m in ACCURACY_MODELS for m in models)

    def axis_values(self, key: str) -> list:
        for a in self.axes:
            if key in a.keys:
                i = a.keys.index(key)
                return [v[i] for v in a.values]
        return []


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in data.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, name + "."))
        else:
            out[name] = v
    return out


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


def _resolve(value, base_dir: Path | None) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate


def load_sweep(path) -> SweepSpec:
    """Read and validate a sweep YAML file."""
    path = Path(path)
    return sweep_from_dict(load_yaml_mapping(path, what="sweep"), source=str(path), base_dir=path.parent)


class _Problems(list):
    def add(self, key: str, text: str) -> None:
        self.append(f"sweep.{key}: {text}")


def _axes(grid, link, problems: _Problems) -> list[Axis]:
    entries: dict[str, list] = {}
    if not isinstance(grid, dict) or not grid:
        problems.add("grid", f"expected a non-empty mapping of axis keys to lists, not {short_repr(grid)}")
        return []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            problems.add(f"grid.{key}", f"expected a non-empty list of values, not {short_repr(values)}")
        else:
            entries[str(key)] = values
    groups: list[tuple[str, ...]] = []
    if link is not None:
        if not isinstance(link, list) or not all(isinstance(g, list) and len(g) >= 2 for g in link):
            problems.add("link", f"expected a list of key lists (e.g. [[array.rows, array.cols]]), not "
                                 f"{short_repr(link)}")
        else:
            seen: set[str] = set()
            for i, group in enumerate(link):
                keys = tuple(str(k) for k in group)
                bad = [k for k in keys if k not in entries]
                if bad:
                    problems.add(f"link[{i}]", f"{bad[0]!r} is not a grid key")
                elif len({len(entries[k]) for k in keys}) != 1:
                    lengths = ", ".join(f"{k}: {len(entries[k])}" for k in keys)
                    problems.add(f"link[{i}]", f"linked axes need equal lengths, not {lengths}")
                elif seen & set(keys):
                    problems.add(f"link[{i}]", f"{sorted(seen & set(keys))[0]!r} is already linked")
                else:
                    seen |= set(keys)
                    groups.append(keys)
    axes, grouped = [], {k for g in groups for k in g}
    for key, values in entries.items():
        group = next((g for g in groups if g[0] == key), None)
        if group is not None:
            axes.append(Axis(group, tuple(zip(*(entries[k] for k in group), strict=True))))
        elif key not in grouped:
            axes.append(Axis((key,), tuple((v,) for v in values)))
    return axes


def _search(raw, problems: _Problems) -> dict:
    raw = {"method": "grid"} if raw is None else raw
    if not isinstance(raw, dict):
        problems.add("search", f"expected a mapping with 'method', not {short_repr(raw)}")
        return {"method": "grid"}
    method = raw.get("method", "grid")
    allowed = {"grid": ("method",), "random": ("method", "samples", "seed"),
               "nsga2": ("method", "trials", "population", "seed")}
    if method not in SEARCH_METHODS:
        problems.add("search.method", f"expected one of {', '.join(SEARCH_METHODS)}, not {short_repr(method)}")
        return {"method": "grid"}
    for key in raw:
        if key not in allowed[method]:
            problems.add(f"search.{key}", f"unknown key for method {method}; expected {', '.join(allowed[method])}")
    out = {"method": method}
    defaults = {"samples": 1000, "seed": 0, "trials": 200, "population": 20}
    for key in allowed[method][1:]:
        value = raw.get(key, defaults[key])
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
            problems.add(f"search.{key}", f"expected a {'non-negative' if key == 'seed' else 'positive'} integer, "
                                          f"not {short_repr(value)}")
            value = defaults[key]
        out[key] = value
    return out


def _objectives(raw, problems: _Problems) -> dict:
    if raw is None:
        return dict(DEFAULT_OBJECTIVES)
    if not isinstance(raw, dict) or not raw:
        problems.add("objectives", f"expected a mapping of column -> min|max, not {short_repr(raw)}")
        return dict(DEFAULT_OBJECTIVES)
    out = {}
    for key, sense in raw.items():
        if key not in OBJECTIVE_COLUMNS:
            problems.add(f"objectives.{key}", f"expected one of {', '.join(OBJECTIVE_COLUMNS)}")
        elif sense not in ("min", "max"):
            problems.add(f"objectives.{key}", f"expected min or max, not {short_repr(sense)}")
        else:
            out[key] = sense
    return out


def _expressions(raw, where: str, problems: _Problems, *, mapping: bool):
    if raw is None:
        return ()
    if mapping and not isinstance(raw, dict):
        problems.add(where, f"expected a mapping of dotted keys to expressions, not {short_repr(raw)}")
        return ()
    if not mapping and not isinstance(raw, list):
        problems.add(where, f"expected a list of expressions, not {short_repr(raw)}")
        return ()
    items = raw.items() if mapping else enumerate(raw)
    out = []
    for key, text in items:
        try:
            expr = Expression(str(text) if isinstance(text, (int, float)) and not isinstance(text, bool) else text)
        except ExpressionError as exc:
            problems.add(f"{where}.{key}" if mapping else f"{where}[{key}]", str(exc))
            continue
        out.append((str(key), expr) if mapping else expr)
    return tuple(out)


def sweep_from_dict(data: dict, *, source: str = "<dict>", base_dir: Path | None = None) -> SweepSpec:
    """Validate a parsed sweep mapping (structure only; :func:`check_points` validates the values)."""
    problems = _Problems()
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(str(key), f"unknown key; expected one of {', '.join(_TOP_KEYS)}")
    if data.get("version", 1) != 1:
        problems.add("version", f"expected 1, not {short_repr(data.get('version'))}")
    arch_value = data.get("arch", "default")
    arch_path = _DEFAULT_ARCH if arch_value == "default" else _resolve(arch_value, base_dir) \
        if isinstance(arch_value, str) else None
    base_arch: dict = {}
    if arch_path is None:
        problems.add("arch", f"expected 'default' or a path, not {short_repr(arch_value)}")
    elif not arch_path.is_file():
        problems.add("arch", f"architecture file not found, not {short_repr(str(arch_path))}")
    else:
        base_arch = load_yaml_mapping(arch_path, what="arch")
    workload = data.get("workload", "default")
    if workload != "default" and not (isinstance(workload, str) and _resolve(workload, base_dir).is_file()):
        problems.add("workload", f"expected 'default' or an existing file, not {short_repr(workload)}")
    mode = data.get("mode")
    if mode not in (None, "pipelined", "scalesim"):
        problems.add("mode", f"expected 'pipelined' or 'scalesim', not {short_repr(mode)}")
    fixed = data.get("set") or {}
    if not isinstance(fixed, dict):
        problems.add("set", f"expected a mapping of dotted arch keys to values, not {short_repr(fixed)}")
        fixed = {}
    axes = _axes(data.get("grid"), data.get("link"), problems)
    size = math.prod(len(a.values) for a in axes)
    if size > budget("SWEEP_POINTS"):
        problems.add("grid", limit_message("SWEEP_POINTS", size, "grid points"))
    models = data.get("models") or {}
    if not isinstance(models, dict):
        problems.add("models", f"expected a mapping of model name -> options, not {short_repr(models)}")
        models = {}
    chunk = data.get("chunk_size", 2000)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        problems.add("chunk_size", f"expected a positive integer, not {short_repr(chunk)}")
        chunk = 2000
    spec_kwargs = dict(
        name=str(data.get("name", Path(source).stem)), base_arch=base_arch,
        arch_dir=arch_path.parent if arch_path is not None else None,
        workload=None if workload == "default" else str(_resolve(workload, base_dir)), mode=mode,
        fixed={str(k): v for k, v in fixed.items()}, axes=tuple(axes),
        derived=_expressions(data.get("derived"), "derived", problems, mapping=True),
        constraints=_expressions(data.get("constraints"), "constraints", problems, mapping=False),
        search=_search(data.get("search"), problems), objectives=_objectives(data.get("objectives"), problems),
        models=models, chunk_size=chunk, source=source)
    if problems:
        raise ConfigError(source, problems)
    resolved = {"raw": data, "base_dir": str(base_dir) if base_dir is not None else "", "arch": base_arch,
                "workload": spec_kwargs["workload"]}
    spec = SweepSpec(**spec_kwargs, data=resolved)
    if "objectives" not in data and not spec.has_accuracy:
        object.__setattr__(spec, "objectives", {k: v for k, v in spec.objectives.items() if k != "accuracy"})
    return spec


def check_points(spec: SweepSpec) -> None:
    """Validate every axis value once on the first point; one ConfigError lists each problem with its reach.

    A value's problem is reported as ``sweep.grid.KEY=VALUE: arch.path: text (N of M points)``.
    """
    from hwsim.perf.arch import arch_from_dict

    first = spec.point(0) if spec.size else {}
    problems: list[str] = []
    seen: set[str] = set()

    def attempt(point: dict, label: str, reach: int) -> None:
        try:
            data = spec.point_arch_dict(point)
            arch = arch_from_dict(data, source=label, base_dir=spec.arch_dir)
        except ConfigError as exc:
            for p in exc.problems:
                if p not in seen:
                    seen.add(p)
                    problems.append(f"sweep.grid {label}: {p} ({reach} of {spec.size} points)")
            return
        except (ExpressionError, ArithmeticError, TypeError, ValueError) as exc:
            problems.append(f"sweep.derived ({label}): {exc} ({reach} of {spec.size} points)")
            return
        _check_names(spec, point, data, arch, problems)

    attempt(first, "first point", 1)
    for axis in spec.axes:
        reach = spec.size // len(axis.values)
        for value in axis.values[1:]:
            label = ", ".join(f"{k}={short_repr(v)}" for k, v in zip(axis.keys, value, strict=True))
            attempt({**first, **dict(zip(axis.keys, value, strict=True))}, label, reach)
            if len(problems) > MAX_LISTED:
                break
    from hwsim.sweep_models import check_model_recipe, recipe_label

    labels = [recipe_label(r) for r in spec.axis_values("recipe")]
    for dup in sorted({x for x in labels if labels.count(x) > 1}):
        problems.append(f"sweep.grid.recipe: two recipes are named {dup!r}; give inline recipes distinct names")
    for key in ("model", "recipe"):
        for value in spec.axis_values(key):
            text = check_model_recipe(spec, key, value)
            if text:
                problems.append(f"sweep.grid.{key}: {text} ({spec.size // len(spec.axis_values(key))} of "
                                f"{spec.size} points)")
    if spec.search["method"] == "nsga2":
        try:
            import optuna  # noqa: F401
        except ImportError:
            problems.append("sweep.search.method: nsga2 needs optuna (pip install 'hwsim[sweep]')")
    if problems:
        raise ConfigError(spec.source, list(dict.fromkeys(problems)))


def _check_names(spec: SweepSpec, point: dict, data: dict, arch, problems: list) -> None:
    known = set(point) | set(spec.fixed) | {k for k, _ in spec.derived} | set(PRE_METRICS) | set(_flat(data))
    for i, expr in enumerate(spec.constraints):
        for name in sorted(expr.names - known):
            text = f"sweep.constraints[{i}]: unknown name {name!r} (axis, set or derived keys, arch keys, " \
                   f"{', '.join(PRE_METRICS)})"
            if text not in problems:
                problems.append(text)
