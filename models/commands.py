"""``hwsim model ...`` sub-commands (provider module for :mod:`hwsim.cli`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hwsim.cli_args import nonempty_list, nonnegative_int, positive_int
from hwsim.result_set import result_set

DEFAULT_OUT = "hwsim_out/run"


def write_arch(out_dir, arch) -> None:
    """Write ``arch.json``: every resolved parameter of ``arch`` (an ArchSpec), for the report."""
    from dataclasses import asdict

    from hwsim.atomic_io import write_json_atomic

    write_json_atomic(Path(out_dir) / "arch.json", asdict(arch))


def build_report_if(summary: dict, args, folder) -> bool:
    """Build the HTML/Markdown report into ``folder`` unless ``--no-report``; return whether it was built."""
    if args.no_report:
        return False
    from hwsim.progress import stage
    from hwsim.reports.run_report import build_report

    with stage("report"):
        build_report(folder)
    return True


def emit(summary: dict, args, out, written: str, report: bool, text: str) -> None:
    """Print ``text`` and what was written, or with ``--json`` only the summary as JSON on stdout (the files
    written are then listed on stderr)."""
    lines = [f"wrote {out}/{written}"] + ([f"wrote {Path(out) / 'report.html'}"] if report else [])
    if getattr(args, "json", False):
        print(json.dumps({k: v for k, v in summary.items() if k != "markdown"}, indent=1, default=_jsonable))
        print("\n".join(lines), file=sys.stderr)
    else:
        print(text)
        print("\n".join(lines))


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"summary value is not JSON serialisable, not {type(value).__name__}")


def _run(args) -> int:
    """``hwsim run``: a model through the datapath (default), an ONNX file, or a workload through the perf model."""
    if args.workload:
        return _run_workload(args)
    if args.onnx:
        return _run_onnx(args)
    if args.inputs or args.reference:
        raise ValueError(f"--inputs/--reference apply to --onnx runs only, not {args.inputs or args.reference!r}")
    if args.mode:
        raise ValueError(f"--mode applies to --workload runs only, not {args.mode!r}")
    from hwsim.models.run import run_model
    from hwsim.perf.arch import as_arch

    arch = as_arch(args.arch)  # a bad architecture file fails before the model runs
    options = {}
    if args.layers is not None:
        options["layers"] = args.layers
    if args.tokens is not None:
        if args.model != "smollm2":
            raise ValueError(f"--tokens applies to --model smollm2, not {args.model!r}")
        options["tokens"] = args.tokens
    out = args.out or DEFAULT_OUT
    with result_set(out, command="hwsim run") as folder:  # summary and report replace the old set together
        summary = run_model(args.model, arch, args.formats, args.sentences, folder, **options)
        write_arch(folder, arch)
        report = build_report_if(summary, args, folder)
    emit(summary, args, out, "summary.json, summary.md, per_layer.csv, accuracy.csv, arch.json", report,
         summary["markdown"])
    return 0


def _run_onnx(args) -> int:
    """``hwsim run --onnx model.onnx``: a user's float/QDQ/dynamic ONNX model (see hwsim.models.onnx_run)."""
    from hwsim.models.onnx_run import run_onnx
    from hwsim.perf.arch import as_arch

    if args.model != "minilm" or args.formats is not None or args.layers is not None:
        raise ValueError("--model/--formats/--layers select an embedded model; the ONNX file carries its own "
                         f"formats, not {args.onnx!r} with them")
    arch = as_arch(args.arch)
    out = args.out or DEFAULT_OUT
    with result_set(out, command="hwsim run --onnx") as folder:
        summary = run_onnx(args.onnx, args.inputs, arch, folder, sentences=args.sentences or 4,
                           reference=args.reference)  # writes arch.json with the model's PE formats
        report = build_report_if(summary, args, folder)
    emit(summary, args, out, "summary.json, summary.md, per_layer.csv, accuracy.csv, arch.json", report,
         summary["markdown"])
    return 0


def _run_workload(args) -> int:
    from hwsim.perf.commands import run_workload

    if args.model != "minilm" or any(v is not None for v in (args.formats, args.sentences, args.layers,
                                                               args.onnx, args.inputs, args.reference)):
        raise ValueError("--model/--formats/--sentences/--layers/--onnx select a model run; drop them with "
                         f"--workload, not {args.workload!r}")
    llm = {k: v for k, v in (("phase", args.phase), ("seq_len", args.seq_len), ("kv_len", args.kv_len),
                             ("batch", args.batch), ("kv_format", args.kv_format)) if v is not None}
    if llm and not args.workload.startswith("llm:"):
        raise ValueError(f"--phase/--seq-len/--kv-len/--batch/--kv-format apply to --workload llm:NAME runs only, "
                         f"not {args.workload!r}")
    if not args.out:
        result = run_workload(args.arch, args.workload, None, mode=args.mode, llm=llm)
        print(json.dumps(result.summary(), indent=1, default=_jsonable) if args.json else result.summary_text())
        return 0
    from hwsim.perf.arch import as_arch

    with result_set(args.out, command="hwsim run --workload") as folder:
        result = run_workload(args.arch, args.workload, folder, mode=args.mode, llm=llm)
        write_arch(folder, as_arch(args.arch))
        report = build_report_if(result.summary(), args, folder)
    emit(result.summary(), args, args.out, "per_op.csv, per_op.json, summary.json, arch.json", report,
         result.summary_text())
    return 0


def _check_onnx(args) -> int:
    from hwsim.models.onnx_check import check_onnx

    report = check_onnx(args.model, sentences=args.sentences)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "text"}, indent=1, default=_jsonable))
    else:
        print(report["text"])
    return 0 if report["accumulators_equal"] else 1


def _info(args) -> int:
    from hwsim.ptq import load_recipe, preset_names

    print("recipe presets (use a name with --formats/--recipe, or pass a recipe YAML file):")
    for name in preset_names():
        print(f"  {name:<16} {load_recipe(name).describe()}")
    return 0


def _fixed_point_study(args) -> int:
    from hwsim.models.fixed_point_study import markdown_table, run_study

    rows = run_study(args.model, args.sentences, args.tokens, args.out)
    print(markdown_table(rows))
    return 0


def _export(args) -> int:
    from hwsim.models.model_export import export_model, summary_text

    summary = export_model(args.model, args.recipe, args.layout, args.out, layers=args.layers,
                           sentences=args.sentences, tokens=args.tokens)
    if args.json:
        print(json.dumps(summary, indent=1, default=_jsonable))
    else:
        print(summary_text(summary, args.out))
    return 0


def _register_export(sub) -> None:
    from hwsim.models.model_export import LAYOUT_CHOICES

    e = sub.add_parser("export", help="write a quantized model as a GPTQ/AWQ/compressed-tensors checkpoint or ONNX",
                       description="Quantizes --model with --recipe and writes --out: a checkpoint folder "
                                   "(model.safetensors with Hugging Face names, config.json with quantization_config) "
                                   "read back and checked bit-exact, or linears.onnx run by onnxruntime and checked "
                                   "against hwsim's accumulators. A layer the layout cannot hold is refused and "
                                   "nothing is written.")
    e.add_argument("--model", default="minilm", choices=("minilm", "smollm2"), help="embedded model (default minilm)")
    e.add_argument("--recipe", "--formats", dest="recipe", required=True,
                   help="recipe preset (see `hwsim model formats`) or recipe YAML file")
    e.add_argument("--layout", required=True, choices=LAYOUT_CHOICES, help="checkpoint layout or onnx")
    e.add_argument("--out", required=True, help="output folder (replaced as a whole)")
    e.add_argument("--layers", type=positive_int, default=None, help="truncate the model to this many layers")
    e.add_argument("--sentences", type=positive_int, default=None,
                   help="held-out sentences / text chunks checked and scored (default 4 / 2)")
    e.add_argument("--tokens", type=positive_int, default=64, help="tokens per SmolLM2 text chunk (default 64)")
    e.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    e.set_defaults(handler=_export)


def _register_run(subparsers) -> None:
    r = subparsers.add_parser(
        "run", help="the main job: a quantized model (or a workload) on an architecture: accuracy, cycles, energy",
        description="Without arguments: MiniLM-L6 W8A8 (per-channel weights) on the default architecture for 4 "
                    "held-out sentences - cosine vs float, cycles, latency, energy - written to hwsim_out/run. "
                    "With --workload: cycles/energy of a workload YAML or SCALE-Sim topology CSV only.")
    r.add_argument("--model", default="minilm", choices=("minilm", "smollm2"), help="embedded model (default minilm)")
    r.add_argument("--arch", default=None, help="architecture YAML (default: the packaged default)")
    r.add_argument("--formats", "--recipe", dest="formats", default=None, type=nonempty_list,
                   help="comma-separated recipe presets or recipe YAML files (see `hwsim model formats`; "
                        "default w8a8, SmolLM2: q4_1-a8)")
    r.add_argument("--sentences", type=positive_int, default=None,
                   help="held-out sentences (MiniLM, default 4) / text chunks (SmolLM2, default 8)")
    r.add_argument("--tokens", type=positive_int, default=None, help="tokens per SmolLM2 text chunk (default 256)")
    r.add_argument("--layers", type=positive_int, default=None, help="truncate the model to this many layers")
    r.add_argument("--workload", help="workload YAML, SCALE-Sim topology CSV, or llm:NAME / llm:config.json "
                                      "(a built-in LLM or a Hugging Face config): performance model only")
    llm = r.add_argument_group("LLM workloads (--workload llm:...)")
    llm.add_argument("--phase", choices=("prefill", "decode"), default=None, help="step to simulate (default prefill)")
    llm.add_argument("--seq-len", type=positive_int, default=None, help="prompt tokens of prefill (default 2048)")
    llm.add_argument("--kv-len", type=nonnegative_int, default=None,
                     help="tokens already in the KV cache at decode (default 2048)")
    llm.add_argument("--batch", type=positive_int, default=None, help="sequences per step (default 1)")
    llm.add_argument("--kv-format", default=None, help="KV-cache number format (default: the PE activation format)")
    r.add_argument("--mode", choices=("pipelined", "scalesim"), help="timing mode override (--workload runs)")
    r.add_argument("--out", default=None, help=f"output folder (default for model runs: {DEFAULT_OUT})")
    r.add_argument("--onnx", metavar="MODEL.onnx",
                   help="your own ONNX model (float, QDQ or quantize_dynamic): accuracy of hwsim's integer execution "
                        "vs float, cycles and energy with the model's formats")
    r.add_argument("--inputs", metavar="FEEDS.npz",
                   help="--onnx: arrays named like the model inputs (default for text models: tokenized sentences)")
    r.add_argument("--reference", metavar="FLOAT.onnx",
                   help="--onnx: float model to measure a quantized model's accuracy against")
    r.add_argument("--json", action="store_true", help="print the summary as JSON on stdout (nothing else)")
    r.add_argument("--no-report", action="store_true", help="skip the HTML report")
    r.set_defaults(handler=_run)


def register(subparsers) -> None:
    _register_run(subparsers)
    p = subparsers.add_parser("model", help="imported-model tools: onnxruntime QDQ check, quantization presets, "
                                                "checkpoint/ONNX export")
    sub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    c = sub.add_parser("check-onnx", help="onnxruntime's quantized MatMul accumulators vs hwsim's integer GEMM",
                       description="A float model is quantized with onnxruntime quantize_static (QDQ) first; an "
                                   "already quantized model (QDQ or quantize_dynamic) is checked as stored.")
    c.add_argument("--model", default=None,
                   help="float, QDQ or dynamic-quantized ONNX file (default: paraphrase-MiniLM-L3 package)")
    c.add_argument("--sentences", type=positive_int, default=2)
    c.add_argument("--json", action="store_true", help="print the check as JSON on stdout")
    c.set_defaults(handler=_check_onnx)
    s = sub.add_parser("fixed-point-study",
                       help="PFPQuant table: integer-only inference, mitigation x RoPE x softmax bits",
                       description="Runs the fixed-point study (models/fixed_point_study.py) and writes "
                                   "fixed_point_study_<model>.csv and .md to --out.")
    s.add_argument("--model", default="smollm2", choices=("minilm", "smollm2"))
    s.add_argument("--sentences", type=positive_int, default=2, help="held-out text chunks / sentences (default 2)")
    s.add_argument("--tokens", type=positive_int, default=64, help="tokens per SmolLM2 chunk (default 64)")
    s.add_argument("--out", default="hwsim_out/fixed_point_study", help="output folder")
    s.set_defaults(handler=_fixed_point_study)
    _register_export(sub)
    f = sub.add_parser("formats", help="list the quantization recipe presets")
    f.set_defaults(handler=_info)
    p.set_defaults(handler=lambda args: (p.print_help(), 0)[1])
