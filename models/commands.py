"""``hwsim model ...`` sub-commands (provider module for :mod:`hwsim.cli`)."""

from __future__ import annotations


def _run(args) -> int:
    from hwsim.models.run import run_model

    options = {}
    if args.layers is not None:
        options["layers"] = args.layers
    formats = args.formats or ("q4_1-a8" if args.model == "smollm2" else "w8a8")
    sentences = args.sentences or (1 if args.model == "smollm2" else 4)
    summary = run_model(args.model, args.arch, formats, sentences, args.out, **options)
    print(summary["markdown"])
    if args.out:
        print(f"wrote {args.out}/summary.json, summary.md, per_layer.csv, accuracy.csv")
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


def register(subparsers) -> None:
    p = subparsers.add_parser("model", help="run imported models (MiniLM-L6, SmolLM2, ONNX) on the datapath")
    sub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    r = sub.add_parser("run", help="float vs bit-exact quantized run + cycles/energy")
    r.add_argument("--model", default="minilm", choices=("minilm", "smollm2"))
    r.add_argument("--arch", default=None, help="architecture YAML (default: the packaged default)")
    r.add_argument("--formats", default=None,
                   help="comma-separated presets (see `hwsim model formats`; default w8a8, SmolLM2: q4_1-a8)")
    r.add_argument("--sentences", type=int, default=None,
                   help="held-out sentences (MiniLM, default 4) / 48-token text chunks (SmolLM2, default 1)")
    r.add_argument("--layers", type=int, default=None, help="truncate the model to this many layers")
    r.add_argument("--out", default=None, help="output folder for summary.json, summary.md, CSVs")
    r.set_defaults(handler=_run)
    c = sub.add_parser("check-onnx", help="onnxruntime QDQ MatMul accumulators vs hwsim's integer GEMM")
    c.add_argument("--model", default=None, help="float ONNX file (default: paraphrase-MiniLM-L3 package)")
    c.add_argument("--sentences", type=int, default=2)
    c.set_defaults(handler=_check_onnx)
    f = sub.add_parser("formats", help="list the quantization presets")
    f.set_defaults(handler=_info)
    p.set_defaults(handler=lambda args: (p.print_help(), 0)[1])
