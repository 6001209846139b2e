"""Resumable, loss-free results store of a sweep: one parquet file per finished chunk.

Layout of ``DIR/store``::

    sweep.json                 the sweep's digest and resolved spec (a store refuses another spec)
    chunks/chunk-000042.parquet  the rows of chunk 42 (written to a temporary name, fsync'ed, renamed)
    accuracy/<sha256>.json     accuracy + quantized workload per (model, recipe, calibration)

A chunk file appears by one atomic ``rename`` after its data is on disk, so ``kill -9`` at any moment
leaves either the whole chunk or no file (a leftover ``*.tmp-*`` is deleted on the next open); a chunk
is identified by its number, so a resumed run skips finished chunks and can never write one twice.
Each row carries ``point`` (its number in the spec) and ``point_hash`` (a hash of its axis values).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hwsim.atomic_io import write_json_atomic
from hwsim.errors import HwsimError

__all__ = ["ChunkStore"]


class ChunkStore:
    """Chunks of one sweep under ``root`` (see module docstring)."""

    def __init__(self, root):
        self.root = Path(root)
        self.chunks = self.root / "chunks"
        self.accuracy = self.root / "accuracy"

    def open(self, digest: str, spec_data: dict) -> int:
        """Create or reopen the store for the sweep ``digest``; return the number of finished chunks."""
        meta = self.root / "sweep.json"
        if meta.is_file():
            stored = json.loads(meta.read_text()).get("digest")
            if stored != digest:
                raise HwsimError(f"{self.root.parent}: holds the results of another sweep (digest {stored}, "
                                 f"this spec {digest}); give a new --out folder or the same spec")
        self.chunks.mkdir(parents=True, exist_ok=True)
        self.accuracy.mkdir(parents=True, exist_ok=True)
        if not meta.is_file():
            write_json_atomic(meta, {"digest": digest, "spec": spec_data}, default=str)
        for leftover in self.chunks.glob("*.tmp-*"):
            leftover.unlink(missing_ok=True)
        return len(self.done())

    def spec_data(self) -> dict:
        """The resolved spec this store was opened with (``--resume``)."""
        meta = self.root / "sweep.json"
        if not meta.is_file():
            raise HwsimError(f"{self.root.parent}: not a sweep folder (no store/sweep.json)")
        return json.loads(meta.read_text())["spec"]

    def path(self, chunk_id: int) -> Path:
        return self.chunks / f"chunk-{chunk_id:06d}.parquet"

    def done(self) -> set[int]:
        """Numbers of the finished chunks."""
        return {int(p.stem.split("-")[1]) for p in self.chunks.glob("chunk-*.parquet")}

    def write(self, chunk_id: int, frame) -> Path:
        """Write one chunk atomically and durably (data fsync'ed before the rename, the folder after)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        final = self.path(chunk_id)
        tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fd = os.open(self.chunks, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return final

    def read(self, chunk_id: int):
        import pandas as pd

        return pd.read_parquet(self.path(chunk_id))

    def read_all(self):
        """Every finished chunk as one DataFrame sorted by point number."""
        import pandas as pd

        frames = [pd.read_parquet(p) for p in sorted(self.chunks.glob("chunk-*.parquet"))]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({"point": []})
        return pd.concat(frames, ignore_index=True).sort_values("point", kind="stable").reset_index(drop=True)
