"""The ``model`` and ``recipe`` axes of a sweep: workloads and accuracy per (model, recipe), cached on disk.

Model values::

    minilm, smollm2     the accuracy tasks of hwsim.models.run (weights from the packaged model files);
                        with a recipe: accuracy = its score against the float model and the workload is
                        the quantized graph the recipe returns (so the recipe fixes the PE format pairs)
    default             the packaged MiniLM-L6 workload (shapes only, PE default formats; no accuracy)
    llm:NAME            hwsim.llm's graph of a built-in LLM config or config.json (shapes only)
    a .yaml/.csv path   a workload file (hwsim.perf.sources)

Options per model come from the spec's ``models:`` section (``minilm: {sentences, calib_sentences,
layers}``, ``smollm2: {chunks, tokens, layers, calib_chunks}``, ``llm:NAME: {phase, batch, seq_len,
kv_len}``). Accuracy columns: ``accuracy`` (MiniLM: mean cosine vs float of the pooled embeddings;
SmolLM2: next-token agreement with float) plus the task's whole score row as ``acc_*`` columns.

Cache: one JSON file per (model, options, recipe, calibration) under ``cache_dir``, named by the SHA-256
of that key (recipe = the text of its file, or its inline mapping); it holds the accuracy row and the
quantized workload's ops, so a re-run (or ``--resume``) neither re-quantizes nor re-scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from hwsim.atomic_io import write_json_atomic
from hwsim.perf.workload import GemmOp, MemoryOp, NormOp, VectorOp, Workload

__all__ = ["check_model_recipe", "resolve_workloads"]

_LOG = logging.getLogger("hwsim.sweep")
_OP_TYPES = {cls.__name__: cls for cls in (GemmOp, NormOp, VectorOp, MemoryOp)}
_TASK_OPTIONS = {"minilm": ("sentences", "calib_sentences", "layers"),
                 "smollm2": ("chunks", "tokens", "layers", "calib_chunks")}
_LLM_OPTIONS = ("phase", "batch", "seq_len", "kv_len")
_ACCURACY_KEY = {"minilm": "cosine_vs_float", "smollm2": "next_token_agreement"}
CACHE_VERSION = 1


def _recipe_text(recipe) -> str:
    from hwsim.ptq.recipe import PRESET_DIR

    if isinstance(recipe, dict):
        return json.dumps(recipe, sort_keys=True)
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml"):
        return path.read_text()
    return (PRESET_DIR / f"{recipe}.yaml").read_text()


def recipe_label(recipe) -> str:
    """Column value of a recipe: its preset name / file stem, or the inline recipe's ``name``."""
    if recipe is None:
        return ""
    if isinstance(recipe, dict):
        return str(recipe.get("name", "inline"))
    return Path(str(recipe)).stem


def _model_options(spec, model: str) -> dict:
    raw = spec.models.get(model) or {}
    return dict(raw) if isinstance(raw, dict) else {}


def check_model_recipe(spec, key: str, value) -> str | None:
    """One line naming what is wrong with a ``model``/``recipe`` axis value, else None."""
    if key == "recipe":
        from hwsim.ptq import load_recipe

        if not any(m in _TASK_OPTIONS for m in (spec.axis_values("model") or ["default"])):
            return "a recipe needs a model with weights and calibration data (minilm or smollm2) on the model axis"
        try:
            load_recipe(_resolved_recipe(spec, value))
        except Exception as exc:  # the recipe layer's own one-line messages
            return f"recipe {recipe_label(value)!r}: {exc}"
        return None
    model = str(value)
    options = _model_options(spec, model)
    if model in _TASK_OPTIONS:
        bad = sorted(set(options) - set(_TASK_OPTIONS[model]))
        return f"models.{model}.{bad[0]}: unknown option; expected {', '.join(_TASK_OPTIONS[model])}" if bad else None
    if model == "default":
        return None
    if model.startswith("llm:"):
        from hwsim.llm.config import load_llm_config

        bad = sorted(set(options) - set(_LLM_OPTIONS))
        if bad:
            return f"models.{model}.{bad[0]}: unknown option; expected {', '.join(_LLM_OPTIONS)}"
        try:
            load_llm_config(model[4:])
        except ValueError as exc:
            return str(exc)
        return None
    path = _path(spec, model)
    if path.suffix.lower() not in (".yaml", ".yml", ".csv") or not path.is_file():
        return (f"model {model!r}: expected minilm, smollm2, default, llm:NAME or an existing workload "
                f".yaml/.csv file")
    return None


def _path(spec, value) -> Path:
    base = spec.data.get("base_dir") or "."
    p = Path(str(value))
    return p if p.is_absolute() else Path(base) / p


def _resolved_recipe(spec, recipe):
    if isinstance(recipe, str) and Path(recipe).suffix in (".yaml", ".yml"):
        return str(_path(spec, recipe))
    return recipe


def workload_to_json(workload: Workload) -> dict:
    return {"name": workload.name,
            "ops": [{"type": type(op).__name__, **dataclasses.asdict(op)} for op in workload.ops]}


def _tuples(value):
    """JSON back to what the (frozen, hashable) op dataclasses hold: tuples, and IntUnits for dicts."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        from hwsim.perf.int_units import IntUnit

        return IntUnit(**value)
    return value


def workload_from_json(data: dict) -> Workload:
    ops = tuple(_OP_TYPES[o["type"]](**{k: _tuples(v) for k, v in o.items() if k != "type"}) for o in data["ops"])
    return Workload(data["name"], ops)


def _perf_only_workload(spec, model: str) -> Workload:
    from hwsim.perf.sources import as_workload

    if model == "default":
        return as_workload(spec.workload)
    if model.startswith("llm:"):
        from hwsim.llm.config import load_llm_config
        from hwsim.llm.graph import build_llm_graph

        opts = _model_options(spec, model)
        graph = build_llm_graph(load_llm_config(model[4:]), opts.get("phase", "prefill"),
                                batch=opts.get("batch", 1), seq_len=opts.get("seq_len", 128),
                                kv_len=opts.get("kv_len", 0))
        return as_workload(graph)
    return as_workload(str(_path(spec, model)))


class _Tasks:
    """Accuracy tasks and their float references, built once per model."""

    def __init__(self, spec):
        self.spec = spec
        self.tasks: dict = {}

    def get(self, model: str):
        if model not in self.tasks:
            from hwsim.float_executor import FloatBackend, run_graph
            from hwsim.models.run import minilm_task, smollm2_task

            opts = _model_options(self.spec, model)
            task = (minilm_task if model == "minilm" else smollm2_task)(**opts)
            reference = [run_graph(task.graph, feeds, FloatBackend()) for feeds in task.evaluation]
            self.tasks[model] = (task, reference)
        return self.tasks[model]


def cache_key(spec, model: str, recipe) -> str:
    """SHA-256 of model, its options (incl. calibration), the recipe text and the cache version."""
    payload = {"model": model, "options": _model_options(spec, model), "recipe": _recipe_text(
        _resolved_recipe(spec, recipe)), "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def resolve_workloads(spec, cache_dir, *, progress=None) -> dict:
    """``{(model, recipe_label): (Workload, accuracy_row)}`` for every model x recipe of ``spec``.

    Accuracy rows come from the on-disk cache when present; otherwise they are computed and cached.
    """
    from hwsim.progress import stage

    models = [str(m) for m in spec.axis_values("model")] or ["default"]
    recipes = spec.axis_values("recipe") or [None]
    cache = Path(cache_dir)
    tasks = _Tasks(spec)
    out = {}
    for model in models:
        for recipe in recipes:
            label = recipe_label(recipe)
            if recipe is None or model not in _TASK_OPTIONS:
                out[(model, label)] = (_perf_only_workload(spec, model), {})
                continue
            path = cache / f"{cache_key(spec, model, recipe)}.json"
            if path.is_file():
                try:
                    data = json.loads(path.read_text())
                    out[(model, label)] = (workload_from_json(data["workload"]), data["accuracy"])
                    continue
                except (ValueError, TypeError, KeyError):  # written by another hwsim version: recompute
                    _LOG.info("accuracy cache %s unreadable; recomputing", path.name)
            with stage(f"accuracy {model} x {label}"):
                from hwsim.models.run import quantize_and_score
                from hwsim.perf.sources import as_workload

                task, reference = tasks.get(model)
                qgraph, row, _ = quantize_and_score(task, _resolved_recipe(spec, recipe), reference)
                row = {"accuracy": float(row[_ACCURACY_KEY[model]]),
                       **{f"acc_{k}": v for k, v in row.items() if isinstance(v, (int, float, str))}}
                workload = as_workload(qgraph)
            write_json_atomic(path, {"key": path.stem, "model": model, "recipe": label, "accuracy": row,
                                     "workload": workload_to_json(workload)})
            _LOG.info("accuracy %s x %s: %.6f", model, label, row["accuracy"])
            out[(model, label)] = (workload, row)
    return out
