"""SCALE-Sim 3.0 drop-in: read its ``.cfg`` and topology CSVs, compute its reports with our model.

Inputs
------
* Config (``configparser``): ``[architecture_presets]`` ArrayHeight (rows), ArrayWidth (cols),
  IfmapSramSzkB / FilterSramSzkB / OfmapSramSzkB, Dataflow (os/ws/is); ``[run_presets]``
  InterfaceBandwidth (CALC or USER). Offsets, request-buffer sizes, ``[layout]`` bank settings
  are read and ignored (they do not change cycles or counts in CALC mode).
* Topology CSV, conv mode: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
  Channels, Num Filter, Strides,`` (one stride for both directions; SCALE-Sim's output size is
  ``ceil((in - filter + stride) / stride)``, no padding). GEMM mode: ``Layer, M, N, K,`` -- note
  SCALE-Sim's column order M, N, K. Rows end with a trailing comma; an optional sparsity column
  ``N:M`` is accepted only as ``1:1``. The mode is detected from the header (``M, N, K`` => GEMM)
  unless given. As in SCALE-Sim, a conv layer whose name contains ``DP`` (depthwise) is split into
  one single-channel layer per input channel.

Outputs: ``COMPUTE_REPORT.csv``, ``BANDWIDTH_REPORT.csv`` and ``DETAILED_ACCESS_REPORT.csv`` with
SCALE-Sim's header text, column meanings and row format (``LayerID, v1, v2, ...,``).

Not modelled (rejected with a ConfigError, or noted): sparsity (``SparsitySupport: true``), custom
SRAM layouts (``IfmapCustomLayout``/``FilterCustomLayout: True``), Ramulator traces, and USER
interface-bandwidth stalls (USER mode is accepted; we report SCALE-Sim's CALC-mode schedule with
zero stalls; SCALE-Sim's CALC mode itself never stalls: its write buffer frees space as soon as a drain
starts and drains one ``ArrayWidth``-word line per cycle, the array's peak output rate).
``Total Cycles (incl. prefetch)`` and the DRAM columns need the DRAM replay of
:mod:`hwsim.perf.scalesim_dram` (``exact_dram=True``); without it they are our own estimates.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError, short_repr, short_text
from hwsim.limits import budget, limit_message
from hwsim.perf.timing import compute_cycles, map_gemm, sram_words
from hwsim.perf.workload import GemmOp, Workload
from hwsim.result_set import result_set
from hwsim.safe_yaml import read_text_bounded

COMPUTE_HEADER = ("LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, "
                  "Mapping Efficiency %, Compute Util %,\n")
BANDWIDTH_HEADER = ("LayerID, Avg IFMAP SRAM BW, Avg FILTER SRAM BW, Avg OFMAP SRAM BW, "
                    "Avg IFMAP DRAM BW, Avg FILTER DRAM BW, Avg OFMAP DRAM BW,\n")
DETAIL_HEADER = ("LayerID, SRAM IFMAP Start Cycle, SRAM IFMAP Stop Cycle, SRAM IFMAP Reads, "
                 "SRAM Filter Start Cycle, SRAM Filter Stop Cycle, SRAM Filter Reads, "
                 "SRAM OFMAP Start Cycle, SRAM OFMAP Stop Cycle, SRAM OFMAP Writes, "
                 "DRAM IFMAP Start Cycle, DRAM IFMAP Stop Cycle, DRAM IFMAP Reads, "
                 "DRAM Filter Start Cycle, DRAM Filter Stop Cycle, DRAM Filter Reads, "
                 "DRAM OFMAP Start Cycle, DRAM OFMAP Stop Cycle, DRAM OFMAP Writes,\n")


@dataclass(frozen=True)
class ScaleSimConfig:
    run_name: str
    rows: int
    cols: int
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    dataflow: str
    bandwidth_mode: str = "CALC"
    source: str = "<cfg>"


def read_config(path) -> ScaleSimConfig:
    """Parse a SCALE-Sim ``.cfg``; every problem is reported with ``section.key`` and the file."""
    path = Path(path)
    cp = configparser.ConfigParser(interpolation=None)  # a '%' in a value is text, as SCALE-Sim reads it
    try:
        cp.read_string(read_text_bounded(path, "cfg"), source=str(path))
    except configparser.Error as exc:
        raise ConfigError(str(path), [f"cfg: not a valid SCALE-Sim config ({short_text(exc)})"]) from None
    problems: list[str] = []

    def get(section, key, default=None):
        if cp.has_option(section, key):
            return cp.get(section, key).strip()
        if default is None:
            problems.append(f"{section}.{key}: required key is missing")
        return default

    def positive(section, key):
        raw = get(section, key)
        if raw is None:
            return 1
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= budget("DIM"):
            problems.append(f"{section}.{key}: expected a positive integer <= {budget('DIM'):,}, not {short_repr(raw)}")
            return 1
        return value

    arch = "architecture_presets"
    df = get(arch, "Dataflow", "")
    if df not in ("os", "ws", "is"):
        problems.append(f"{arch}.Dataflow: expected one of ['os', 'ws', 'is'], not {short_repr(df)}")
    bw = get("run_presets", "InterfaceBandwidth", "CALC")
    if bw not in ("CALC", "USER"):
        problems.append(f"run_presets.InterfaceBandwidth: expected 'CALC' or 'USER', not {short_repr(bw)}")
    if get("sparsity", "SparsitySupport", "false").lower() == "true":
        problems.append("sparsity.SparsitySupport: sparsity is not modelled by hwsim, not 'true'")
    for key in ("IfmapCustomLayout", "FilterCustomLayout"):
        if get("layout", key, "False").lower() == "true":
            problems.append(f"layout.{key}: custom SRAM layouts are not modelled by hwsim, not 'True'")
    if get("run_presets", "UseRamulatorTrace", "False").lower() == "true":
        problems.append("run_presets.UseRamulatorTrace: Ramulator traces are not modelled by hwsim, not 'True'")
    cfg = ScaleSimConfig(run_name=get("general", "run_name", path.stem), rows=positive(arch, "ArrayHeight"),
                         cols=positive(arch, "ArrayWidth"), ifmap_kb=positive(arch, "IfmapSramSzkB"),
                         filter_kb=positive(arch, "FilterSramSzkB"), ofmap_kb=positive(arch, "OfmapSramSzkB"),
                         dataflow=df, bandwidth_mode=bw, source=str(path))
    if problems:
        raise ConfigError(str(path), problems)
    return cfg


@dataclass(frozen=True)
class TopologyLayer:
    """One SCALE-Sim layer in conv terms (GEMM rows are converted as SCALE-Sim does)."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride_h: int = 1
    stride_w: int = 1

    @property
    def ofmap_h(self) -> int:  # ceil((in - filter + stride) / stride) in integers: exact for any size
        return -(-(self.ifmap_h - self.filter_h + self.stride_h) // self.stride_h)

    @property
    def ofmap_w(self) -> int:
        return -(-(self.ifmap_w - self.filter_w + self.stride_w) // self.stride_w)

    @property
    def mnk(self) -> tuple[int, int, int]:
        """``(M, K, N)``: output pixels, window size, filters."""
        return (self.ofmap_h * self.ofmap_w, self.filter_h * self.filter_w * self.channels, self.num_filters)


@dataclass(frozen=True)
class Topology:
    name: str
    mode: str
    layers: tuple[TopologyLayer, ...]

    def to_workload(self) -> Workload:
        ops = []
        for layer in self.layers:
            m, k, n = layer.mnk
            ops.append(GemmOp(name=layer.name, m=m, k=k, n=n, kind="gemm" if self.mode == "gemm" else "conv"))
        return Workload(self.name, tuple(ops))


def read_topology(path, mode: str | None = None) -> Topology:
    """Read a SCALE-Sim topology CSV (``mode`` ``"conv"``/``"gemm"``, or detected from the header)."""
    path = Path(path)
    lines = [ln.strip() for ln in read_text_bounded(path, "topology").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise ConfigError(str(path), ["topology: file is empty"])
    header = [h.strip().lower() for h in lines[0].split(",")]
    if mode is None:
        mode = "gemm" if header[1:4] == ["m", "n", "k"] else "conv"
    if mode not in ("conv", "gemm"):
        raise ValueError(f"topology mode must be 'conv' or 'gemm', not {short_repr(mode)}")
    problems, layers = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        cells = [c.strip() for c in line.split(",")]
        if cells and cells[-1] == "":
            cells = cells[:-1]  # SCALE-Sim rows end with a trailing comma
        where = f"line {lineno}"
        need = 4 if mode == "gemm" else 8
        if len(cells) < need or len(cells) > need + 1:
            cols = "Layer, M, N, K" if mode == "gemm" else "name, ifmap h/w, filter h/w, channels, filters, stride"
            problems.append(f"{where}: expected {need} columns ({cols}) and an optional N:M, not {len(cells)}")
            continue
        if len(cells) == need + 1 and cells[-1].replace(" ", "") != "1:1":
            problems.append(f"{where}: sparsity ratios are not modelled; expected '1:1', not {short_repr(cells[-1])}")
            continue
        try:
            nums = [int(c) for c in cells[1:need]]
        except ValueError:
            problems.append(f"{where}: expected integers after the layer name, not {short_repr(cells[1:need])}")
            continue
        if any(not 1 <= v <= budget("DIM") for v in nums):
            problems.append(f"{where}: sizes must be positive integers <= {budget('DIM'):,}, not {short_repr(nums)}")
            continue
        if mode == "gemm":
            m, n, k = nums
            layer = TopologyLayer(cells[0], m, k, 1, k, 1, n)
        else:
            ih, iw, fh, fw, ch, nf, st = nums
            if fh > ih or fw > iw:
                problems.append(f"{where}: filter {fh}x{fw} larger than the ifmap {ih}x{iw}, not allowed")
                continue
            if "DP" in cells[0]:
                # SCALE-Sim's depthwise convention: a layer named *DP* becomes one single-channel
                # layer per input channel, named <name>Channel_<i>
                if len(layers) + ch > budget("TOPOLOGY_LAYERS"):
                    problems.append(f"{where}: {limit_message('TOPOLOGY_LAYERS', len(layers) + ch, 'layers')}")
                    break
                layers += [TopologyLayer(f"{cells[0]}Channel_{i}", ih, iw, fh, fw, 1, nf, st, st) for i in range(ch)]
                continue
            layer = TopologyLayer(cells[0], ih, iw, fh, fw, ch, nf, st, st)
        layers.append(layer)
        if len(layers) > budget("TOPOLOGY_LAYERS"):
            problems.append(f"{where}: {limit_message('TOPOLOGY_LAYERS', len(layers), 'layers')}")
            break
    if problems:
        raise ConfigError(str(path), problems)
    if not layers:
        raise ConfigError(str(path), ["topology: no layers after the header"])
    return Topology(path.stem, mode, tuple(layers))


def _first_last_rows(df: str, operand: str, r: int, c: int, t: int, ru: int, cu: int) -> tuple[int, int]:
    """First and last demand-matrix row (within one fold) holding a request of ``operand``.

    ``ru``/``cu`` are the array rows/cols the fold uses. Derived from SCALE-Sim's demand matrices:
    skewed tiles put element ``(t, j)`` on row ``offset + t + j``; flipped stationary tiles occupy
    rows ``R - ru .. R - 1``.
    """
    if df == "os":
        table = {"ifmap": (0, t - 1 + ru - 1), "weight": (0, t - 1 + cu - 1),
                 "ofmap": (t - 1 + r - ru, t - 1 + r - 1 + cu - 1)}
    elif df == "ws":
        table = {"ifmap": (r, r + t - 1 + ru - 1), "weight": (r - ru, r - 1),
                 "ofmap": (2 * r - 1, 2 * r - 1 + t - 1 + cu - 1)}
    else:
        table = {"ifmap": (r - ru, r - 1), "weight": (r, r + t - 1 + ru - 1),
                 "ofmap": (2 * r - 1, 2 * r - 1 + t - 1 + cu - 1)}
    return table[operand]


def _fold_averages(fm) -> tuple[float, float]:
    """SCALE-Sim's per-fold mapping efficiency / compute utilization averages, summed in its order.

    Equal to :func:`hwsim.perf.timing.scalesim_utilizations` up to float rounding; summing fold by
    fold (column folds outer) reproduces the report's last digits too.
    """
    r, c, rc = fm.rows, fm.cols, fm.rows * fm.cols
    span = fm.preload + fm.t + r + c - 2 + (c - 1 if fm.preload else 0)
    cu = np.minimum(c, fm.sc - np.arange(fm.col_folds) * c)
    ru = np.minimum(r, fm.sr - np.arange(fm.row_folds) * r)
    used = np.outer(cu, ru).ravel()  # column folds outer, row folds inner
    maps = used / rc
    utils = (used * fm.t) / (rc * span)
    # np.add.accumulate adds strictly left to right, like Python's sum() over SCALE-Sim's list
    return float(np.add.accumulate(maps)[-1]) / used.size, float(np.add.accumulate(utils)[-1]) / used.size


def layer_report(layer: TopologyLayer, cfg: ScaleSimConfig, *, exact_dram: bool = True) -> dict:
    """SCALE-Sim's compute-report and detailed-access-report items for one layer."""
    m, k, n = layer.mnk
    fm = map_gemm(m, k, n, cfg.rows, cfg.cols, cfg.dataflow)
    cycles = compute_cycles(fm, "scalesim")
    words = sram_words(fm, m, k, n, "scalesim")
    mapping, compute_util = _fold_averages(fm)
    span = fm.preload + fm.t + fm.rows + fm.cols - 2
    r_last = fm.sr - (fm.row_folds - 1) * fm.rows
    c_last = fm.sc - (fm.col_folds - 1) * fm.cols
    out = {"name": layer.name, "m": m, "k": k, "n": n, "total_cycles": cycles, "stall_cycles": 0,
           "overall_util": m * k * n * 100 / (cycles * cfg.rows * cfg.cols),
           "mapping_eff": mapping * 100, "compute_util": compute_util * 100,
           "sram_ifmap_reads": words["ifmap_reads"], "sram_filter_reads": words["weight_reads"],
           "sram_ofmap_writes": words["ofmap_writes"]}
    for operand, key, lat in (("ifmap", "ifmap", 1), ("weight", "filter", 1), ("ofmap", "ofmap", 0)):
        first, _ = _first_last_rows(cfg.dataflow, operand, fm.rows, fm.cols, fm.t, min(fm.rows, fm.sr),
                                    min(fm.cols, fm.sc))
        _, last = _first_last_rows(cfg.dataflow, operand, fm.rows, fm.cols, fm.t, r_last, c_last)
        out[f"sram_{key}_start"] = first + lat
        out[f"sram_{key}_stop"] = (fm.folds - 1) * span + last + lat
    if exact_dram:
        from hwsim.perf.scalesim_dram import dram_report

        dram = dram_report(layer, cfg)
        for key in ("ifmap", "filter"):  # exact first/last valid request (conv rows may hold -1 padding)
            out[f"sram_{key}_start"] = dram.pop(f"sram_{key}_start_exact")
            out[f"sram_{key}_stop"] = dram.pop(f"sram_{key}_stop_exact")
        out.update(dram)
    else:
        out.update(_dram_estimate(m, k, n, fm, cfg, cycles))
    out["total_cycles_incl_prefetch"] = int(out["dram_ofmap_stop"] - min(out["dram_ifmap_start"],
                                                                          out["dram_filter_start"]))
    return out


def _dram_estimate(m, k, n, fm, cfg, cycles) -> dict:
    """Analytic DRAM words when the replay is skipped: each operand once per epoch of reuse.

    An operand re-read across folds is fetched again for every fold when its footprint exceeds
    SCALE-Sim's working window (half the SRAM), else once. Start/stop cycles are approximate.
    """
    out = {}
    for key, words, kb, missing in (("ifmap", m * k, cfg.ifmap_kb, "N"),
                                    ("filter", k * n, cfg.filter_kb, "M")):
        refetch = fm.folds_of(missing)
        reads = words if words <= kb * 1024 * 0.5 else words * refetch
        out[f"dram_{key}_reads"] = reads
        pre = ceil(min(reads, kb * 1024 * 0.5) / 10)
        out[f"dram_{key}_start"] = -1 - pre
        out[f"dram_{key}_stop"] = cycles
    out["dram_ofmap_writes"] = m * n * fm.folds_of("K")
    out["dram_ofmap_start"] = 0
    out["dram_ofmap_stop"] = cycles
    return out


def _cycle(x) -> str:
    """Start/stop cycles print as floats in SCALE-Sim's report (they come from float trace arrays)."""
    return str(float(x))


def write_reports(out_dir, cfg: ScaleSimConfig, topo: Topology, *, exact_dram: bool = True) -> list[dict]:
    """Write ``COMPUTE_REPORT.csv``, ``BANDWIDTH_REPORT.csv`` and ``DETAILED_ACCESS_REPORT.csv``.

    Returns the per-layer report dicts. Average bandwidths are SCALE-Sim's: SRAM words / total
    cycles, DRAM words / (stop - start + 1) cycles.
    """
    reports = [layer_report(layer, cfg, exact_dram=exact_dram) for layer in topo.layers]
    with result_set(out_dir, command="hwsim scalesim") as folder:  # the three reports are one set
        _write_csvs(folder, reports)
    return reports


def _write_csvs(out: Path, reports: list[dict]) -> None:
    with open(out / "COMPUTE_REPORT.csv", "w", encoding="utf-8") as fh:
        fh.write(COMPUTE_HEADER)
        for lid, r in enumerate(reports):
            items = [r["total_cycles_incl_prefetch"], r["total_cycles"], r["stall_cycles"], r["overall_util"],
                     r["mapping_eff"], r["compute_util"]]
            fh.write(f"{lid}, " + ", ".join(str(x) for x in items) + ",\n")
    with open(out / "BANDWIDTH_REPORT.csv", "w", encoding="utf-8") as fh:
        fh.write(BANDWIDTH_HEADER)
        for lid, r in enumerate(reports):
            cyc = r["total_cycles"]
            items = [r["sram_ifmap_reads"] / cyc, r["sram_filter_reads"] / cyc, r["sram_ofmap_writes"] / cyc]
            for key, verb in (("ifmap", "reads"), ("filter", "reads"), ("ofmap", "writes")):
                items.append(r[f"dram_{key}_{verb}"] / float(r[f"dram_{key}_stop"] - r[f"dram_{key}_start"] + 1))
            fh.write(f"{lid}, " + ", ".join(str(x) for x in items) + ",\n")
    with open(out / "DETAILED_ACCESS_REPORT.csv", "w", encoding="utf-8") as fh:
        fh.write(DETAIL_HEADER)
        for lid, r in enumerate(reports):
            items = []
            for key in ("ifmap", "filter", "ofmap"):
                verb = "writes" if key == "ofmap" else "reads"
                items += [_cycle(r[f"sram_{key}_start"]), _cycle(r[f"sram_{key}_stop"]), r[f"sram_{key}_{verb}"]]
            for key in ("ifmap", "filter", "ofmap"):
                verb = "writes" if key == "ofmap" else "reads"
                items += [_cycle(r[f"dram_{key}_start"]), _cycle(r[f"dram_{key}_stop"]), r[f"dram_{key}_{verb}"]]
            fh.write(f"{lid}, " + ", ".join(str(x) for x in items) + ",\n")
