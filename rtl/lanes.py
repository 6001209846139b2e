"""``LaneArray``: N copies of a stream component behind one wide stream (a SIMD row of lanes).

Used by the cocotb benches to check many vectors per simulated cycle (cocotb's per-cycle Python cost
dominates otherwise) and usable as a row of PEs.  Lanes share the handshake: the array's ``i.ready`` and
``o.valid`` are lane 0's, which equal every lane's as long as the lanes see identical control fields
(the PE's ``first``/``last``), as a row of PEs fed from one sequencer does.  Payloads are
``data.ArrayLayout(lane_layout, lanes)`` (lane 0 in the least significant bits); ``latency`` is the
lane's.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LaneArray"]


class LaneArray(wiring.Component):
    """``lanes`` instances built by ``make_lane()`` sharing one valid/ready handshake.

    Parameters
    ----------
    make_lane : callable
        Returns a new lane component with ``i``/``o`` stream members and a ``latency`` attribute.
    lanes : int
        Number of lanes (>= 1).
    """

    def __init__(self, make_lane, lanes: int):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        self._lanes = [make_lane() for _ in range(lanes)]
        first = self._lanes[0]
        self._latency = first.latency
        in_shape = first.i.payload.shape()
        out_shape = first.o.payload.shape()
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(in_shape, lanes))),
                          "o": Out(stream.Signature(data.ArrayLayout(out_shape, lanes)))})

    @property
    def latency(self) -> int:
        return self._latency

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    @property
    def lane(self):
        """Lane 0 (its layouts and parameters describe every lane)."""
        return self._lanes[0]

    def elaborate(self, platform):
        m = Module()
        for index, lane in enumerate(self._lanes):
            m.submodules[f"lane{index}"] = lane
            m.d.comb += [lane.i.payload.eq(self.i.payload[index]), lane.i.valid.eq(self.i.valid),
                         lane.o.ready.eq(self.o.ready), self.o.payload[index].eq(lane.o.payload)]
        m.d.comb += [self.i.ready.eq(self._lanes[0].i.ready), self.o.valid.eq(self._lanes[0].o.valid)]
        return m
