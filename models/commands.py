"""``hwsim model ...`` sub-commands (provider module for :mod:`hwsim.cli`)."""

from __future__ import annotations

from pathlib import Path

from hwsim.cli_args import nonempty_list, positive_int
from hwsim.result_set import result_set

DEFAULT_OUT = "hwsim_out/run"


def write_arch(out_dir, arch) -> None:
    """Write ``arch.json``: every resolved parameter of ``arch`` (an ArchSpec), for the report."""
    from dataclasses import asdict

    from hwsim.atomic_io import write_json_atomic

    write_json_atomic(Path(out_dir) / "arch.json", asdict(arch))


def _run(args) -> int:
    """``hwsim run``: a model through the datapath (default), or a workload file through the perf model."""
    if args.workload:
        return _run_workload(args)
    if args.mode:
        raise ValueError(f"--mode applies to --workload runs only, not {args.mode!r}")
    from hwsim.models.run import run_model
    from hwsim.perf.arch import as_arch

    arch = as_arch(args.arch)  # a bad architecture file fails before the model runs
    options = {}
    if args.layers is not None:
        options["layers"] = args.layers
    formats = args.formats if args.formats is not None else ("q4_1-a8" if args.model == "smollm2" else "w8a8")
    sentences = args.sentences if args.sentences is not None else (1 if args.model == "smollm2" else 4)
    out = args.out or DEFAULT_OUT
    with result_set(out, command="hwsim run") as folder:  # summary and report replace the old set together
        summary = run_model(args.model, arch, formats, sentences, folder, **options)
        write_arch(folder, arch)
        report = not args.no_report and isinstance(summary.get("performance"), dict)
        if report:
            from hwsim.reports.run_report import build_report

            build_report(folder)
    print(summary["markdown"])
    print(f"wrote {out}/summary.json, summary.md, per_layer.csv, accuracy.csv")
    if report:
        print(f"wrote {Path(out) / 'report.html'}")
    return 0


def _run_workload(args) -> int:
    from hwsim.perf.commands import run_workload

    if args.model != "minilm" or any(v is not None for v in (args.formats, args.sentences, args.layers)):
        raise ValueError("--model/--formats/--sentences/--layers select a model run; drop them with --workload, "
                         f"not {args.workload!r}")
    if not args.out:
        print(run_workload(args.arch, args.workload, None, mode=args.mode).summary_text())
        return 0
    from hwsim.perf.arch import as_arch

    with result_set(args.out, command="hwsim run --workload") as folder:
        result = run_workload(args.arch, args.workload, folder, mode=args.mode)
        write_arch(folder, as_arch(args.arch))
        if not args.no_report:
            from hwsim.reports.run_report import build_report

            build_report(folder)
    print(result.summary_text())
    print(f"wrote {args.out}/per_op.csv, per_op.json, summary.json")
    if not args.no_report:
        print(f"wrote {Path(args.out) / 'report.html'}")
    return 0


def _check_onnx(args) -> int:
    from hwsim.models.onnx_import import check_qdq

    report = check_qdq(args.model, sentences=args.sentences)
    print(report["text"])
    return 0 if report["accumulators_equal"] else 1


def _info(args) -> int:
    from hwsim.models.qexec import PRESETS

    print("format presets:")
    for name, cfg in PRESETS.items():
        print(f"  {name:<16} {cfg.describe()}")
    return 0


def _register_run(subparsers) -> None:
    r = subparsers.add_parser(
        "run", help="the main job: a quantized model (or a workload) on an architecture: accuracy, cycles, energy",
        description="Without arguments: MiniLM-L6 W8A8 (per-channel weights) on the default architecture for 4 "
                    "held-out sentences - cosine vs float, cycles, latency, energy - written to hwsim_out/run. "
                    "With --workload: cycles/energy of a workload YAML or SCALE-Sim topology CSV only.")
    r.add_argument("--model", default="minilm", choices=("minilm", "smollm2"), help="embedded model (default minilm)")
    r.add_argument("--arch", default=None, help="architecture YAML (default: the packaged default)")
    r.add_argument("--formats", default=None, type=nonempty_list,
                   help="comma-separated presets (see `hwsim model formats`; default w8a8, SmolLM2: q4_1-a8)")
    r.add_argument("--sentences", type=positive_int, default=None,
                   help="held-out sentences (MiniLM, default 4) / 48-token text chunks (SmolLM2, default 1)")
    r.add_argument("--layers", type=positive_int, default=None, help="truncate the model to this many layers")
    r.add_argument("--workload", help="workload YAML or SCALE-Sim topology CSV: performance model only")
    r.add_argument("--mode", choices=("pipelined", "scalesim"), help="timing mode override (--workload runs)")
    r.add_argument("--out", default=None, help=f"output folder (default for model runs: {DEFAULT_OUT})")
    r.add_argument("--no-report", action="store_true", help="skip the HTML/PNG report")
    r.set_defaults(handler=_run)


def register(subparsers) -> None:
    _register_run(subparsers)
    p = subparsers.add_parser("model", help="imported-model tools: onnxruntime QDQ check, quantization presets")
    sub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    c = sub.add_parser("check-onnx", help="onnxruntime QDQ MatMul accumulators vs hwsim's integer GEMM")
    c.add_argument("--model", default=None, help="float ONNX file (default: paraphrase-MiniLM-L3 package)")
    c.add_argument("--sentences", type=positive_int, default=2)
    c.set_defaults(handler=_check_onnx)
    f = sub.add_parser("formats", help="list the quantization presets")
    f.set_defaults(handler=_info)
    p.set_defaults(handler=lambda args: (p.print_help(), 0)[1])
