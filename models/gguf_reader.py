"""The ``gguf`` library's reader, with every read bounded by the file size.

``gguf.GGUFReader`` reads a metadata array element by element through a memory map; a read past the
end of the file returns an empty slice instead of failing, so a 68-byte file whose array header claims
2**40 elements loops (and appends) until memory runs out.  :func:`open_gguf` gives the library's reader
with two checks added, before anything is allocated: every read must lie inside the file, and an
array's claimed length must fit the bytes left (at least one byte per element) and the ``MODEL_ITEMS``
budget of :mod:`hwsim.limits`.  Parsing itself stays the library's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.limits import limit_message


class GGUFBoundsError(ValueError):
    """A GGUF field or tensor claims more bytes than the file holds."""


def _bounded_reader_class():
    import gguf

    class BoundedGGUFReader(gguf.GGUFReader):
        def _get(self, offset, dtype, count=1, override_order=None):
            count = int(count)
            itemsize = int(np.dtype(dtype).itemsize)
            left = len(self.data) - int(offset)
            if count < 0 or itemsize * count > left:
                raise GGUFBoundsError(f"a field at byte {int(offset)} needs {count:,} x {itemsize} bytes, "
                                      f"more than the {max(left, 0):,} bytes left in the file")
            return super()._get(offset, dtype, count, override_order)

        def _get_field_parts(self, orig_offs, raw_type):
            if int(raw_type) == int(gguf.GGUFValueType.ARRAY):
                length = int(self._get(orig_offs + 4, np.uint64)[0])
                left = len(self.data) - (int(orig_offs) + 12)
                if length > left:
                    raise GGUFBoundsError(f"a metadata array at byte {int(orig_offs)} claims {length:,} elements, "
                                          f"more than the {max(left, 0):,} bytes left in the file")
                from hwsim.limits import budget

                if length > budget("MODEL_ITEMS"):
                    raise GGUFBoundsError(limit_message("MODEL_ITEMS", length, "GGUF metadata array elements"))
            return super()._get_field_parts(orig_offs, raw_type)

    return BoundedGGUFReader


def open_gguf(path):
    """``gguf.GGUFReader`` of ``path`` with reads bounded by the file size (see the module docstring)."""
    return _bounded_reader_class()(str(Path(path)))
