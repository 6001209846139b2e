"""Exact replay of SCALE-Sim 3.0's DRAM accounting (CALC bandwidth mode), vectorised with numpy.

SCALE-Sim's DRAM columns come from buffer bookkeeping, not from a closed formula, so we replay the
same request streams -- but only the parts that matter, in numpy:

Read buffers (ifmap, filter; ``ReadBufferEstimateBw``). The SRAM is split into 100 *sets* of
``floor(bytes/100)`` words; 50 sets form the active window. Addresses are taken in demand order
(demand-matrix rows, then columns); an address not already in the current window is inserted.
When 50 sets are full the window is dropped wholesale and a new one starts. Hence
``DRAM reads = sum over windows of the distinct addresses of that window`` where a window closes
after ``50 * floor(bytes/100)`` insertions. With ``prev[i]`` the previous position of the same
address, element ``i`` of the window starting at ``s`` is an insertion iff ``prev[i] < s``.
Start/stop cycles follow its prefetch schedule: the first window is fetched at 10 words/cycle
ending one cycle before the first request (minus the port latency); each later window is fetched
in the interval between the previous two window closes; the trace records cycle + 1.

Write buffer (ofmap; ``write_buffer``): outputs are packed in lines of ``ArrayWidth`` words; once
more than half the buffer is occupied (and the previous drain is over) the partial line is closed
and ``ceil(half / width)`` lines are drained, one per cycle. A drain counts every line as full
except its last one -- the partial lines closed early in the middle of a drain are counted whole,
which is why SCALE-Sim reports slightly more DRAM writes than outputs. We replay this event by
event (one event per drain) from the per-cycle output counts.

Demand order per fold (column folds outer, row folds inner) is derived from SCALE-Sim's demand
matrices: streamed operands are *skewed* tiles (element ``(t, j)`` on row ``offset + t + j``),
stationary ones *flipped* tiles (tile row ``i`` on row ``R - 1 - i``).
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil

import numpy as np

from hwsim.perf.timing import map_gemm

_WINDOW_SETS = 50
_PREFETCH_BW = 10
_PORT_LATENCY = 1


def _ifmap_addresses(layer) -> np.ndarray:
    """SCALE-Sim's im2col address matrix (ofmap pixels x window), ``-1`` outside the ifmap."""
    oh, ow = layer.ofmap_h, layer.ofmap_w
    i = np.arange(oh * ow)[:, None]
    j = np.arange(layer.filter_h * layer.filter_w * layer.channels)[None, :]
    orow, ocol = np.divmod(i, ow)
    irow, icol = orow * layer.stride_h, ocol * layer.stride_w
    crow, rem = np.divmod(j, layer.filter_w * layer.channels)
    ccol, cch = np.divmod(rem, layer.channels)
    valid = (crow + irow < layer.ifmap_h) & (ccol + icol < layer.ifmap_w)
    addr = (irow * layer.ifmap_w + icol) * layer.channels + (crow * layer.ifmap_w + ccol) * layer.channels + cch
    return np.where(valid, addr, -1)


def _filter_addresses(layer) -> np.ndarray:
    w = layer.filter_h * layer.filter_w * layer.channels
    return np.arange(w)[:, None] + np.arange(layer.num_filters)[None, :] * w


@lru_cache(maxsize=64)
def _skew_order(t: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of a ``t x w`` tile in skewed demand order, and each one's row offset ``t + j``."""
    tt, jj = np.meshgrid(np.arange(t), np.arange(w), indexing="ij")
    diag = (tt + jj).ravel()
    order = np.lexsort((jj.ravel(), diag))
    return order, diag[order]


def _fold_streams(df: str, operand: str, ifmap: np.ndarray, filt: np.ndarray, fm):
    """Yield ``(addresses, demand_rows)`` per fold, in SCALE-Sim's demand order (valid entries only)."""
    r, c = fm.rows, fm.cols
    span = fm.preload + fm.t + r + c - 2
    for fc in range(fm.col_folds):
        for fr in range(fm.row_folds):
            base = (fc * fm.row_folds + fr) * span
            rs, cs = slice(fr * r, (fr + 1) * r), slice(fc * c, (fc + 1) * c)
            if df == "os":
                tile, off, skew = (ifmap[rs, :].T, 0, True) if operand == "ifmap" else (filt[:, cs], 0, True)
            elif df == "ws":
                tile, off, skew = (ifmap[:, rs], r, True) if operand == "ifmap" else (filt[rs, cs], 0, False)
            else:
                tile, off, skew = (ifmap[cs, rs].T, 0, False) if operand == "ifmap" else (filt[rs, :].T, r, True)
            if skew:
                order, rows = _skew_order(*tile.shape)
                addr = tile.ravel()[order]
                rows = rows + base + off
            else:  # flipped stationary tile: tile row i on demand row r-1-i
                flipped = tile[::-1]
                addr = flipped.ravel()
                rows = np.repeat(np.arange(r - tile.shape[0], r), tile.shape[1]) + base
            keep = addr >= 0
            yield addr[keep], rows[keep]


def _read_replay(addr: np.ndarray, rows: np.ndarray, size_bytes: int) -> dict:
    """DRAM reads and start/stop cycles of one read buffer over its demand stream."""
    items = size_bytes // 100
    window = _WINDOW_SETS * items
    n = addr.size
    order = np.argsort(addr, kind="stable")
    sorted_addr = addr[order]
    prev = np.full(n, -1, dtype=np.int64)
    same = sorted_addr[1:] == sorted_addr[:-1]
    prev[order[1:][same]] = order[:-1][same]
    closes, reads, s = [], 0, 0
    while s < n:
        chunk = min(n, s + max(4 * window, 1 << 16))
        while True:
            new = np.cumsum(prev[s:chunk] < s)
            if new.size and new[-1] >= window:
                idx = int(np.searchsorted(new, window))
                closes.append(int(rows[s + idx]))
                reads += window
                s = s + idx + 1
                break
            if chunk == n:
                reads += int(new[-1]) if new.size else 0
                s = n
                break
            chunk = min(n, s + 2 * (chunk - s))
    first = int(rows[0]) if n else 0
    if closes:
        start = first - ceil(window / _PREFETCH_BW)
        stop = closes[-1] + 1
    else:
        sets = ceil(reads / items) if items else 0
        start = -ceil(sets * items / _PREFETCH_BW) - 1 + _PORT_LATENCY
        stop = -1
    return {"reads": reads, "start": start, "stop": stop}


def _ofmap_row_counts(fm) -> np.ndarray:
    """Valid ofmap writes per demand row (cycle) over the whole layer."""
    r, c = fm.rows, fm.cols
    span = fm.preload + fm.t + r + c - 2
    out = np.zeros(fm.folds * span, dtype=np.int64)
    for fc in range(fm.col_folds):
        cu = min(c, fm.sc - fc * c)
        for fr in range(fm.row_folds):
            ru = min(r, fm.sr - fr * r)
            base = (fc * fm.row_folds + fr) * span
            if fm.dataflow == "os":
                off, h = fm.t - 1 + r - ru, ru
            else:
                off, h = 2 * r - 1, fm.t
            prof = np.convolve(np.ones(h, dtype=np.int64), np.ones(cu, dtype=np.int64))
            out[base + off: base + off + prof.size] += prof
    return out


def _write_replay(counts: np.ndarray, size_bytes: int, width: int) -> dict:
    """Replay SCALE-Sim's ofmap write buffer; returns DRAM writes and start/stop cycles."""
    total = size_bytes
    active = ceil(total * 0.5)
    drain_lines = ceil((total - active) / width)
    cum = np.cumsum(counts)
    n_elems = int(cum[-1])
    free, e0, line_fill, drain_end = total, 0, 0, 0
    pending: list[int] = []
    writes, first_cycle, last_cycle = 0, None, 0

    def drain(cycle: int) -> int:
        nonlocal writes, free, first_cycle, last_cycle
        nl = min(drain_lines, len(pending))
        data = (nl - 1) * width + pending[nl - 1]
        del pending[:nl]
        writes += data
        free += data
        first_cycle = cycle if first_cycle is None else first_cycle
        last_cycle = max(last_cycle, cycle + nl - 1)
        return cycle + nl - 1

    def add_elements(k: int) -> None:
        nonlocal line_fill
        tot = line_fill + k
        pending.extend([width] * (tot // width))
        line_fill = tot % width

    while True:
        # first element index (1-based) whose cycle is >= drain_end, and the one that drops free below active
        if drain_end >= cum.size:
            break
        by_cycle = int(cum[drain_end - 1]) + 1 if drain_end > 0 else 1
        by_space = e0 + free - active + 1
        e_star = max(by_cycle, by_space, e0 + 1)
        if e_star > n_elems:
            break
        add_elements(e_star - e0)
        free -= e_star - e0
        e0 = e_star
        if line_fill:
            pending.append(line_fill)
            line_fill = 0
        cycle = int(np.searchsorted(cum, e_star))
        drain_end = drain(cycle)
    add_elements(n_elems - e0)
    if line_fill:
        pending.append(line_fill)
    cycle = counts.size - 1
    while pending:
        cycle = drain(cycle) + 1
    return {"writes": writes, "start": first_cycle, "stop": last_cycle}


def dram_report(layer, cfg) -> dict:
    """DRAM columns of SCALE-Sim's detailed access report for one layer (exact replay)."""
    m, k, n = layer.mnk
    fm = map_gemm(m, k, n, cfg.rows, cfg.cols, cfg.dataflow)
    ifmap = _ifmap_addresses(layer)
    filt = _filter_addresses(layer)
    out = {}
    for operand, key, kb in (("ifmap", "ifmap", cfg.ifmap_kb), ("weight", "filter", cfg.filter_kb)):
        parts = list(_fold_streams(cfg.dataflow, operand, ifmap, filt, fm))
        addr = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        rep = _read_replay(addr, rows, kb * 1024)
        out[f"dram_{key}_reads"] = rep["reads"]
        out[f"dram_{key}_start"] = rep["start"]
        out[f"dram_{key}_stop"] = rep["stop"]
        lat = _PORT_LATENCY
        out[f"sram_{key}_start_exact"] = int(rows[0]) + lat
        out[f"sram_{key}_stop_exact"] = int(rows[-1]) + lat
    w = _write_replay(_ofmap_row_counts(fm), cfg.ofmap_kb * 1024, cfg.cols)
    out["dram_ofmap_writes"] = w["writes"]
    out["dram_ofmap_start"] = w["start"]
    out["dram_ofmap_stop"] = w["stop"]
    return out
