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

Streaming: the replay runs fold by fold. Each fold's tile of addresses is computed on its own (never
the whole im2col matrix); the previous position of every address is kept in one array the size of the
operand (``last_pos[address]``), so memory is the operand footprint plus one fold, independent of the
number of folds -- one 4096x4096x4096 GEMM replays in well under 2 GiB. The write buffer's per-cycle
output counts are never materialised either: each fold contributes one of at most four profiles, and
the cumulative count at a cycle is found from per-fold totals (:class:`_FoldedCounts`). Both are
checked against the ``MEMORY_BYTES`` and ``REPLAY_ELEMENTS`` budgets of :mod:`hwsim.limits` first.
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil

import numpy as np

from hwsim.limits import check, check_bytes
from hwsim.perf.timing import map_gemm

_WINDOW_SETS = 50
_PREFETCH_BW = 10
_PORT_LATENCY = 1


def _ifmap_block(layer, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
    """Rows ``i0:i1`` (ofmap pixels), columns ``j0:j1`` (window) of SCALE-Sim's im2col address matrix.

    ``-1`` marks a window element outside the ifmap.
    """
    i = np.arange(i0, i1, dtype=np.int64)[:, None]
    j = np.arange(j0, j1, dtype=np.int64)[None, :]
    orow, ocol = np.divmod(i, layer.ofmap_w)
    irow, icol = orow * layer.stride_h, ocol * layer.stride_w
    crow, rem = np.divmod(j, layer.filter_w * layer.channels)
    ccol, cch = np.divmod(rem, layer.channels)
    valid = (crow + irow < layer.ifmap_h) & (ccol + icol < layer.ifmap_w)
    addr = (irow * layer.ifmap_w + icol) * layer.channels + (crow * layer.ifmap_w + ccol) * layer.channels + cch
    return np.where(valid, addr, -1)


def _filter_block(layer, j0: int, j1: int, n0: int, n1: int) -> np.ndarray:
    """Rows ``j0:j1`` (window), columns ``n0:n1`` (filters) of the filter address matrix."""
    w = layer.filter_h * layer.filter_w * layer.channels
    return np.arange(j0, j1, dtype=np.int64)[:, None] + np.arange(n0, n1, dtype=np.int64)[None, :] * w


@lru_cache(maxsize=16)
def _skew_order(t: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of a ``t x w`` tile in skewed demand order, and each one's row offset ``t + j``."""
    tt, jj = np.meshgrid(np.arange(t), np.arange(w), indexing="ij")
    diag = (tt + jj).ravel()
    order = np.lexsort((jj.ravel(), diag))
    return order, diag[order]


def _fold_tile(df: str, operand: str, layer, fm, fr: int, fc: int) -> tuple[np.ndarray, int, bool]:
    """The operand's address tile of fold ``(fr, fc)``: ``(tile, row offset, skewed?)``."""
    r, c = fm.rows, fm.cols
    m, k, n = layer.mnk
    r0, r1 = fr * r, min((fr + 1) * r, fm.sr)
    c0, c1 = fc * c, min((fc + 1) * c, fm.sc)
    if df == "os":  # rows: M, cols: N, time: K
        if operand == "ifmap":
            return _ifmap_block(layer, r0, r1, 0, k).T, 0, True
        return _filter_block(layer, 0, k, c0, c1), 0, True
    if df == "ws":  # rows: K, cols: N, time: M
        if operand == "ifmap":
            return _ifmap_block(layer, 0, m, r0, r1), r, True
        return _filter_block(layer, r0, r1, c0, c1), 0, False
    # is: rows: K, cols: M, time: N
    if operand == "ifmap":
        return _ifmap_block(layer, c0, c1, r0, r1).T, 0, False
    return _filter_block(layer, r0, r1, 0, n).T, r, True


def _fold_streams(df: str, operand: str, layer, fm):
    """Yield ``(addresses, demand_rows)`` per fold, in SCALE-Sim's demand order (valid entries only)."""
    r, c = fm.rows, fm.cols
    span = fm.preload + fm.t + r + c - 2
    for fc in range(fm.col_folds):
        for fr in range(fm.row_folds):
            base = (fc * fm.row_folds + fr) * span
            tile, off, skew = _fold_tile(df, operand, layer, fm, fr, fc)
            if skew:
                order, rows = _skew_order(*tile.shape)
                addr = tile.ravel()[order]
                rows = rows + (base + off)
            else:  # flipped stationary tile: tile row i on demand row r-1-i
                addr = tile[::-1].ravel()
                rows = np.repeat(np.arange(r - tile.shape[0], r, dtype=np.int64), tile.shape[1]) + base
            keep = addr >= 0
            yield addr[keep], rows[keep]


class _ReadWindow:
    """SCALE-Sim's read buffer fed one chunk of the demand stream at a time.

    ``last_pos[a]`` is the stream position of the latest request of address ``a`` (``-1``: none yet);
    an element is inserted into the active window iff its previous position is before the window start.
    """

    def __init__(self, footprint: int, size_bytes: int):
        self.items = size_bytes // 100
        self.window = _WINDOW_SETS * self.items
        self.last_pos = np.full(max(footprint, 1), -1, dtype=np.int64)
        self.pos = 0  # stream position of the next element
        self.start = 0  # stream position where the active window starts
        self.filled = 0  # insertions in the active window
        self.reads = 0
        self.closes: list[int] = []

    def _previous(self, addr: np.ndarray, where: np.ndarray) -> np.ndarray:
        prev = self.last_pos[addr]
        self.last_pos[addr] = where  # with repeated addresses the last assignment wins
        repeated = self.last_pos[addr] != where
        if repeated.any():  # repeats inside the chunk: previous position from a stable sort
            order = np.argsort(addr, kind="stable")
            sorted_addr = addr[order]
            same = sorted_addr[1:] == sorted_addr[:-1]
            prev[order[1:][same]] = where[order[:-1][same]]
            last = np.r_[~same, True]  # last occurrence of each address in the chunk
            self.last_pos[sorted_addr[last]] = where[order[last]]
        return prev

    def feed(self, addr: np.ndarray, rows: np.ndarray) -> None:
        n = addr.size
        where = np.arange(self.pos, self.pos + n, dtype=np.int64)
        prev = self._previous(addr, where)
        lo = 0
        while lo < n:
            new = np.cumsum(prev[lo:] < self.start)
            need = self.window - self.filled
            if new[-1] < need:
                self.filled += int(new[-1])
                break
            idx = lo + int(np.searchsorted(new, need))
            self.closes.append(int(rows[idx]))
            self.reads += self.window
            self.start, self.filled, lo = int(where[idx]) + 1, 0, idx + 1
        self.pos += n

    def result(self, first_row: int) -> dict:
        reads = self.reads + self.filled
        if self.closes:
            start = first_row - ceil(self.window / _PREFETCH_BW)
            stop = self.closes[-1] + 1
        else:
            sets = ceil(reads / self.items) if self.items else 0
            start = -ceil(sets * self.items / _PREFETCH_BW) - 1 + _PORT_LATENCY
            stop = -1
        return {"reads": reads, "start": start, "stop": stop}


def _read_replay(df: str, operand: str, layer, fm, size_bytes: int) -> dict:
    """DRAM reads and start/stop cycles of one read buffer, plus the first/last demand row."""
    m, k, n = layer.mnk
    if operand == "ifmap":
        footprint = layer.ifmap_h * layer.ifmap_w * layer.channels
        stream = m * k * fm.folds_of("N")
    else:
        footprint = k * n
        stream = k * n * fm.folds_of("M")
    check("REPLAY_ELEMENTS", stream, f"SCALE-Sim DRAM replay of layer {layer.name!r} ({operand} requests)")
    fold_elems = max(fm.t, fm.rows) * max(fm.rows, fm.cols)
    check_bytes(8 * footprint + 64 * fold_elems, f"SCALE-Sim DRAM replay of layer {layer.name!r} ({operand})")
    buf = _ReadWindow(footprint, size_bytes)
    first = last = None
    for addr, rows in _fold_streams(df, operand, layer, fm):
        if addr.size:
            first = int(rows[0]) if first is None else first
            last = int(rows[-1])
            buf.feed(addr, rows)
    out = buf.result(first or 0)
    out["first_row"], out["last_row"] = first or 0, last or 0
    return out


class _FoldedCounts:
    """Cumulative ofmap writes per cycle, ``cum[i]``, without materialising one entry per cycle.

    Fold ``f`` occupies cycles ``f*span .. (f+1)*span - 1``; its writes follow one of at most four
    profiles (full or partial rows x columns). ``at(i)`` is ``cum[i]`` and ``first_reaching(e)`` is
    ``np.searchsorted(cum, e)``.
    """

    def __init__(self, fm):
        r, c = fm.rows, fm.cols
        self.span = fm.preload + fm.t + r + c - 2
        self.size = fm.folds * self.span
        profiles: dict[tuple[int, int], np.ndarray] = {}
        keys = []
        for fc in range(fm.col_folds):
            cu = min(c, fm.sc - fc * c)
            for fr in range(fm.row_folds):
                ru = min(r, fm.sr - fr * r)
                if (ru, cu) not in profiles:
                    profiles[(ru, cu)] = self._profile(fm, ru, cu)
                keys.append((ru, cu))
        self.local = profiles  # (ru, cu) -> cumulative writes within the fold, per cycle
        self.keys = keys
        totals = np.array([profiles[key][-1] for key in keys], dtype=np.int64)
        self.end = np.cumsum(totals)  # cumulative writes at the end of each fold
        self.total = int(self.end[-1])

    def _profile(self, fm, ru: int, cu: int) -> np.ndarray:
        r = fm.rows
        off, h = (fm.t - 1 + r - ru, ru) if fm.dataflow == "os" else (2 * r - 1, fm.t)
        counts = np.zeros(self.span, dtype=np.int64)
        prof = np.convolve(np.ones(h, dtype=np.int64), np.ones(cu, dtype=np.int64))
        if off + prof.size > self.span:  # pragma: no cover - the schedule keeps every fold in its span
            raise AssertionError("ofmap profile runs past its fold")
        counts[off:off + prof.size] = prof
        return np.cumsum(counts)

    def at(self, i: int) -> int:
        f, local = divmod(i, self.span)
        before = int(self.end[f - 1]) if f else 0
        return before + int(self.local[self.keys[f]][local])

    def first_reaching(self, e: int) -> int:
        f = int(np.searchsorted(self.end, e))
        if f >= len(self.keys):
            return self.size
        before = int(self.end[f - 1]) if f else 0
        return f * self.span + int(np.searchsorted(self.local[self.keys[f]], e - before))


def _write_replay(cum: _FoldedCounts, size_bytes: int, width: int) -> dict:
    """Replay SCALE-Sim's ofmap write buffer; returns DRAM writes and start/stop cycles."""
    total = size_bytes
    active = ceil(total * 0.5)
    drain_lines = ceil((total - active) / width)
    n_elems = cum.total
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
        by_cycle = cum.at(drain_end - 1) + 1 if drain_end > 0 else 1
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
        drain_end = drain(cum.first_reaching(e_star))
    add_elements(n_elems - e0)
    if line_fill:
        pending.append(line_fill)
    cycle = cum.size - 1
    while pending:
        cycle = drain(cycle) + 1
    return {"writes": writes, "start": first_cycle, "stop": last_cycle}


def dram_report(layer, cfg) -> dict:
    """DRAM columns of SCALE-Sim's detailed access report for one layer (exact replay, streamed)."""
    m, k, n = layer.mnk
    fm = map_gemm(m, k, n, cfg.rows, cfg.cols, cfg.dataflow)
    check_bytes(8 * (fm.folds * 3 + 4 * (fm.preload + fm.t + fm.rows + fm.cols)),
                f"SCALE-Sim DRAM replay of layer {layer.name!r} (fold tables)")
    out = {}
    for operand, key, kb in (("ifmap", "ifmap", cfg.ifmap_kb), ("weight", "filter", cfg.filter_kb)):
        rep = _read_replay(cfg.dataflow, operand, layer, fm, kb * 1024)
        out[f"dram_{key}_reads"] = rep["reads"]
        out[f"dram_{key}_start"] = rep["start"]
        out[f"dram_{key}_stop"] = rep["stop"]
        out[f"sram_{key}_start_exact"] = rep["first_row"] + _PORT_LATENCY
        out[f"sram_{key}_stop_exact"] = rep["last_row"] + _PORT_LATENCY
    w = _write_replay(_FoldedCounts(fm), cfg.ofmap_kb * 1024, cfg.cols)
    out["dram_ofmap_writes"] = w["writes"]
    out["dram_ofmap_start"] = w["start"]
    out["dram_ofmap_stop"] = w["stop"]
    return out
