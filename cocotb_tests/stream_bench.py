"""cocotb-side stream bench: wide-lane packing, a valid/ready driver+monitor, summaries.

The DUT is a bench bank (see ``sim_harness.bank_verilog``): several configurations x many lanes behind
one valid/ready handshake.  Vectors are packed into one integer per beat with numpy
(:func:`pack_bank`), driven with a seeded idle pattern on ``i.valid`` and a back-pressure pattern on
``o.ready``, and the output beats are captured as bit strings and decoded in bulk
(:func:`unpack_bank`); expected values come from the hwsim golden functions in the calling test, also
in bulk.  Per cycle the Python work is: write ``valid``/``payload``/
``ready`` at the falling edge, read ``i.ready``/``o.valid``/``o.payload`` after the design settled
(``ReadOnly``); a transfer happens at the next rising edge when valid and ready are both high.

The monitor also checks the stream rules on the DUT side: while ``o.valid & ~o.ready`` the DUT must hold
``o.valid`` and ``o.payload`` stable.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

#: Named handshake patterns: (probability i.valid is withheld, probability o.ready is withheld).
PATTERNS = {"steady": (0.0, 0.0), "idle": (0.3, 0.0), "backpressure": (0.0, 0.3), "both": (0.25, 0.25)}


def load_bank() -> dict:
    """The bank description the harness wrote next to the simulator (members, offsets, fields)."""
    with open(os.environ["HWSIM_BANK"]) as handle:
        return json.load(handle)


def pack_bank(bank: dict, vectors: dict[str, dict[str, np.ndarray]], *, chunk: int = 1024) -> list[int]:
    """Pack per-member vectors into one integer per beat of the bank's ``i__payload``.

    ``vectors[member][field]`` are int64 arrays (two's complement for negatives), the same count for
    every member, a multiple of the lane count.  Members of one input group share their stimulus (the
    first member present supplies it); groups without vectors get zeros.  Work is done in numpy,
    ``chunk`` beats at a time.
    """
    lanes = bank["lanes"]
    count = len(next(iter(next(iter(vectors.values())).values())))
    if count % lanes:
        raise ValueError(f"vector count must be a multiple of {lanes} lanes, not {count!r}")
    beats, words = count // lanes, []
    for start in range(0, beats, chunk):
        stop = min(beats, start + chunk)
        rows = slice(start * lanes, stop * lanes)
        parts = []
        for group in bank["in_groups"]:
            bits = np.zeros(((stop - start) * lanes, group["width"]), dtype=np.uint8)
            values = next((vectors[name] for name in group["members"] if name in vectors), None)
            if values is not None:
                for fld in group["fields"]:
                    column = np.asarray(values[fld["name"]][rows], dtype=np.int64)
                    shifts = np.arange(fld["width"], dtype=np.int64)
                    bits[:, fld["offset"]:fld["offset"] + fld["width"]] = (column[:, None] >> shifts) & 1
            parts.append(bits.reshape(stop - start, lanes * group["width"]))
        packed = np.packbits(np.hstack(parts), axis=1, bitorder="little")
        words.extend(int.from_bytes(row.tobytes(), "little") for row in packed)
    return words


def _decode_field(chunk: np.ndarray, width: int, is_signed: bool) -> np.ndarray:
    if width <= 62:
        values = chunk.astype(np.int64) @ (np.int64(1) << np.arange(width, dtype=np.int64))
        if is_signed:
            values = np.where(values >= (1 << (width - 1)), values - (1 << width), values)
        return values
    low = chunk[:, :62].astype(np.int64) @ (np.int64(1) << np.arange(62, dtype=np.int64))
    high = chunk[:, 62:].astype(np.int64) @ (np.int64(1) << np.arange(width - 62, dtype=np.int64))
    values = high.astype(object) * (1 << 62) + low.astype(object)
    if is_signed:
        values = np.array([v - (1 << width) if v >= 1 << (width - 1) else v for v in values], dtype=object)
    return values


def unpack_bank(bank: dict, beats: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Decode output beats (binary strings, MSB first) into ``[member][field]`` arrays (vector order).

    Fields up to 62 bits decode to int64, wider ones to object arrays of Python ints.  Raises
    ``ValueError`` on X/Z bits.
    """
    lanes = bank["lanes"]
    out = {m["name"]: {f["name"]: [] for f in m["out_fields"]} for m in bank["members"]}
    for start in range(0, len(beats), 1024):
        part = beats[start:start + 1024]
        raw = np.frombuffer("".join(part).encode("ascii"), dtype=np.uint8).reshape(len(part), -1)
        if raw.shape[1] != bank["out_width"]:
            raise ValueError(f"beat width must be {bank['out_width']} bits, not {raw.shape[1]!r}")
        bits = raw[:, ::-1] - ord("0")  # LSB first
        if bits.max(initial=0) > 1:
            raise ValueError("output beats hold X/Z bits, not 0/1")
        for member in bank["members"]:
            width = member["out_width"]
            span = bits[:, member["out_offset"]:member["out_offset"] + lanes * width]
            rows = span.reshape(len(part) * lanes, width)
            for fld in member["out_fields"]:
                chunk = rows[:, fld["offset"]:fld["offset"] + fld["width"]]
                out[member["name"]][fld["name"]].append(_decode_field(chunk, fld["width"], fld["signed"]))
    return {name: {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in fields.items()}
            for name, fields in out.items()}


@dataclass
class StreamRun:
    """What :func:`drive_stream` observed."""

    beats: list[str] = field(default_factory=list)
    beat_cycles: list[int] = field(default_factory=list)
    cycles: int = 0
    seconds: float = 0.0
    protocol_errors: list[str] = field(default_factory=list)
    idle_cycles: int = 0
    stall_cycles: int = 0
    first_input_cycle: int | None = None


async def reset(dut, cycles: int = 2) -> None:
    """Start the clock and pulse reset."""
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def drive_stream(dut, words: list[int], expected_beats: int, *, pattern: str,
                       rng: np.random.Generator, max_cycles: int | None = None, prefix: str = "") -> StreamRun:
    """Send ``words`` on ``i`` and collect ``expected_beats`` beats from ``o`` under ``pattern``.

    ``prefix`` selects one member's ports of a stream bank (``sim_harness.streams_verilog``), e.g.
    ``"tile_ws_4x4_int8xint8__"``.  Cycle numbers (``beat_cycles``, ``first_input_cycle``) count
    from this call's first falling edge.
    """
    from cocotb.triggers import FallingEdge, ReadOnly

    idle_p, stall_p = PATTERNS[pattern]
    limit = max_cycles or (4 * (len(words) + expected_beats) + 100)
    idle = rng.random(limit) < idle_p
    stall = rng.random(limit) < stall_p
    run = StreamRun()
    sent, valid_held = 0, False
    held_beat = None
    started = time.perf_counter()
    port = {name: getattr(dut, prefix + name) for name in ("i__valid", "i__payload", "i__ready", "o__valid",
                                                            "o__payload", "o__ready")}
    i_valid, i_payload, i_ready = port["i__valid"], port["i__payload"], port["i__ready"]
    o_valid, o_payload, o_ready = port["o__valid"], port["o__payload"], port["o__ready"]
    cycle = 0
    while len(run.beats) < expected_beats:
        if cycle >= limit:
            raise AssertionError(f"stream stalled: {len(run.beats)} of {expected_beats} beats after "
                                 f"{cycle} cycles ({sent} of {len(words)} inputs sent)")
        await FallingEdge(dut.clk)
        # AXI-stream rule for the driver: once valid is raised it stays until the transfer.
        valid = sent < len(words) and (valid_held or not idle[cycle])
        if valid and not valid_held:
            i_payload.value = words[sent]
        i_valid.value = int(valid)
        ready = not stall[cycle]
        o_ready.value = int(ready)
        run.idle_cycles += int(sent < len(words) and not valid)
        run.stall_cycles += int(not ready)
        await ReadOnly()
        if valid:
            if i_ready.value:
                if run.first_input_cycle is None:
                    run.first_input_cycle = cycle
                sent += 1
                valid_held = False
            else:
                valid_held = True
        if o_valid.value:
            beat = str(o_payload.value)
            if held_beat is not None and beat != held_beat:
                run.protocol_errors.append(f"cycle {cycle}: o.payload changed while o.valid was stalled")
            if ready:
                run.beats.append(beat)
                run.beat_cycles.append(cycle)
                held_beat = None
            else:
                held_beat = beat
        elif held_beat is not None:
            run.protocol_errors.append(f"cycle {cycle}: o.valid dropped before the transfer")
            held_beat = None
        cycle += 1
    await FallingEdge(dut.clk)
    i_valid.value = 0
    run.cycles = cycle
    run.seconds = time.perf_counter() - started
    return run


def write_summary(summary: dict) -> None:
    """Write the test's summary JSON where the pytest harness expects it."""
    path = os.environ.get("HWSIM_SUMMARY")
    if path:
        with open(path, "w") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True, default=int)


def mutants() -> dict[str, str]:
    """Deliberately wrong bank members and the configuration whose golden model checks them.

    From ``HWSIM_MUTANTS="member:config,..."``; their mismatches are reported, not fatal.
    """
    spec = os.environ.get("HWSIM_MUTANTS", "")
    return dict(item.split(":", 1) for item in spec.split(",") if item)
