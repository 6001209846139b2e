"""The recipe interface: ordered, composable post-training quantization passes, configured in YAML.

A recipe step (what llm-compressor calls a modifier) declares the calibration statistics it needs
(:attr:`RecipeStep.needs`) and maps ``(graph, stats) -> graph``; it never mutates its input graph.
A recipe is an ordered list of steps plus per-op overrides::

    version: 1
    name: w4a8-ffn-int4
    recipe:
      - smoothquant: {alpha: 0.7}
      - rtn: {weights: int8, granularity: channel, activations: int8}
    overrides:                       # fnmatch patterns on op names, applied to the named step
      - match: "*.intermediate.dense"
        rtn: {weights: int4, granularity: group, group_size: 128}

:func:`apply_recipe` runs the steps in order and re-calibrates (float run over the calibration batches)
before a step whenever the graph changed since the statistics were taken. Steps register themselves
with :func:`register_step` (one module each in :mod:`hwsim.ptq`); importers may register more (the
checkpoint round trip lives in :mod:`hwsim.models`). Named presets are recipe files in
``hwsim/data/recipes``; :func:`load_recipe` takes a preset name, a path or a mapping.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from hwsim.errors import ConfigError
from hwsim.perf.config_checks import Checker, load_yaml_mapping

PRESET_DIR = Path(__file__).resolve().parent.parent / "data" / "recipes"
_STEPS: dict[str, type[RecipeStep]] = {}


class RecipeStep:
    """Base class of a recipe step. Subclasses set :attr:`name`, :attr:`needs`, :attr:`defaults`
    and implement :meth:`check` (validation of one parameter mapping) and :meth:`apply`."""

    name: ClassVar[str] = ""
    #: Calibration statistics the step reads (see :data:`hwsim.calibration.STATISTICS`).
    needs: ClassVar[frozenset] = frozenset()
    #: Parameter defaults; keys not listed here are errors.
    defaults: ClassVar[dict] = {}

    def __init__(self, params: dict, overrides: tuple = ()):
        self.params = {**self.defaults, **params}
        self.overrides = tuple(overrides)  # (pattern, params) pairs
        self.needs = type(self).needs | self.extra_needs()

    def extra_needs(self) -> frozenset:
        """Statistics needed by this instance's parameters beyond the class's :attr:`needs`."""
        return frozenset()

    @classmethod
    def check(cls, ck: Checker, params: dict, path: str) -> None:
        """Record problems of one parameter mapping (unknown keys are checked by the loader)."""

    def params_for(self, op_name: str) -> dict:
        """Parameters for one op: the step's, updated by every override whose pattern matches."""
        out = dict(self.params)
        for pattern, extra in self.overrides:
            if fnmatch.fnmatchcase(op_name, pattern):
                out.update(extra)
        return out

    def apply(self, graph, stats):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items() if v != self.defaults.get(k, object()))
        return f"{self.name}({args})" if args else self.name


def register_step(cls: type[RecipeStep]) -> type[RecipeStep]:
    """Class decorator: make a step available to recipe files under ``cls.name``."""
    _STEPS[cls.name] = cls
    return cls


def step_names() -> list[str]:
    return sorted(_STEPS)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: name, ordered steps."""

    name: str
    steps: tuple
    source: str = "<dict>"
    description: str = ""

    @property
    def needs(self) -> frozenset:
        out = frozenset()
        for step in self.steps:
            out |= step.needs
        return out

    def describe(self) -> str:
        return self.description or " -> ".join(s.describe() for s in self.steps)


def _single_key(ck: Checker, item, path: str) -> tuple[str | None, dict]:
    if not isinstance(item, dict) or len(item) != 1:
        ck.add(path, f"expected a mapping with one step name such as {{rtn: {{...}}}}, not {item!r}")
        return None, {}
    (key, params), = item.items()
    if key not in _STEPS:
        ck.add(f"{path}.{key}", f"unknown recipe step; expected one of {sorted(_STEPS)}, not {key!r}")
        return None, {}
    if params is None:
        params = {}
    if not isinstance(params, dict):
        ck.add(f"{path}.{key}", f"expected a mapping of parameters, not {params!r}")
        return None, {}
    return key, params


def _check_params(ck: Checker, key: str, params: dict, path: str) -> None:
    cls = _STEPS[key]
    ck.mapping(params, f"{path}.{key}", cls.defaults)
    cls.check(ck, {**cls.defaults, **params}, f"{path}.{key}")


def recipe_from_dict(data: dict, *, source: str = "<dict>") -> Recipe:
    """Validate a recipe mapping (every problem reported once with its key path) and build it."""
    ck = Checker(source)
    top = ck.mapping(data, "", ("version", "name", "description", "recipe", "overrides"))
    if top.get("version", 1) != 1:
        ck.add("version", f"expected 1, not {top.get('version')!r}")
    name = ck.string(top, "name", "recipe", Path(source).stem if source != "<dict>" else "recipe")
    steps_raw = top.get("recipe")
    if not isinstance(steps_raw, list) or not steps_raw:
        ck.add("recipe", f"expected a non-empty list of steps, not {steps_raw!r}")
        steps_raw = []
    overrides: dict[str, list] = {}
    for i, item in enumerate(top.get("overrides") or []):
        path = f"overrides[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("match"), str) or len(item) != 2:
            ck.add(path, f"expected {{match: PATTERN, STEP: {{...}}}}, not {item!r}")
            continue
        rest = {k: v for k, v in item.items() if k != "match"}
        key, params = _single_key(ck, rest, path)
        if key is not None:
            _check_params(ck, key, params, path)
            overrides.setdefault(key, []).append((item["match"], params))
    parsed = []
    for i, item in enumerate(steps_raw):
        key, params = _single_key(ck, item, f"recipe[{i}]")
        if key is not None:
            _check_params(ck, key, params, f"recipe[{i}]")
            parsed.append((key, params))
    for key in overrides:
        if key not in [k for k, _ in parsed]:
            ck.add("overrides", f"override for step {key!r}, which the recipe does not contain")
    ck.raise_if_any()
    steps = tuple(_STEPS[k](p, overrides.get(k, ())) for k, p in parsed)
    return Recipe(name, steps, source, str(top.get("description") or ""))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_recipe(recipe) -> Recipe:
    """A :class:`Recipe` from a Recipe, a preset name (``w8a8``), a YAML path or a mapping."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        return recipe_from_dict(recipe)
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(str(path), ["recipe: file not found"])
        return recipe_from_dict(load_yaml_mapping(path, what="recipe"), source=str(path))
    preset = PRESET_DIR / f"{recipe}.yaml"
    if not preset.is_file():
        raise ValueError(f"recipe must be a preset ({', '.join(preset_names())}) or a .yaml file, not {recipe!r}")
    return recipe_from_dict(load_yaml_mapping(preset, what="recipe"), source=str(preset))


def apply_recipe(graph, recipe, calibration_batches=(), *, stats=None):
    """Apply every step of ``recipe`` to ``graph`` in order; returns the quantized (frozen) graph.

    ``calibration_batches`` (a list of feed dicts) is run in float before a step whenever that step needs
    statistics the current ones lack or the graph changed since they were taken.
    """
    from hwsim.calibration import calibrate

    recipe = load_recipe(recipe)
    graph = graph.freeze()
    batches = list(calibration_batches)
    taken_on = graph if stats is not None else None
    for step in recipe.steps:
        if step.needs and (stats is None or taken_on is not graph or not step.needs <= stats.collected):
            if not batches:
                raise ValueError(f"recipe step {step.name!r} needs calibration statistics "
                                 f"{sorted(step.needs)}: pass calibration batches")
            stats = calibrate(graph, batches, step.needs | recipe.needs)
            taken_on = graph
        graph = step.apply(graph, stats).freeze()
    out = graph.edit()
    out.meta["recipe"] = recipe.describe()
    return out.freeze()
