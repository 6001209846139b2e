"""Deterministic Verilog + JSON manifest for named RTL configurations.

``write_config(name, out_dir)`` writes ``<name>.v`` (Amaranth's Verilog backend with ``emit_src=False``
so no absolute source paths leak in: the same bytes on every machine) and ``<name>.json`` with the
module's ports, widths, latency and the hwsim spec it was generated from.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from hwsim.progress import track

from . import configs

__all__ = ["manifest", "port_list", "to_verilog", "write_config", "write_configs"]


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` as module ``name`` (deterministic: no source locations)."""
    return verilog.convert(component, name=name, emit_src=False)


def _layout_fields(shape) -> list[dict]:
    if not isinstance(shape, data.Layout):
        return []
    return [{"name": field_name, "offset": field.offset, "width": field.width,
             "signed": Shape.cast(field.shape).signed} for field_name, field in shape]


def port_list(component: wiring.Component) -> list[dict]:
    """Ports of ``component``: Verilog name, direction, width and payload fields (LSB first)."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        entry = {"name": "__".join(str(part) for part in path),
                 "direction": "input" if member.flow == wiring.In else "output",
                 "width": Shape.cast(member.shape).width}
        fields = _layout_fields(member.shape)
        if fields:
            entry["fields"] = fields
        ports.append(entry)
    return ports


def manifest(name: str, component: wiring.Component) -> dict:
    """JSON-ready description of configuration ``name``."""
    kind = configs.kind_of(name)
    return {"module": name, "kind": kind, "latency": component.latency, "spec": component.describe(),
            "ports": port_list(component)}


def write_config(name: str, out_dir) -> tuple[Path, Path]:
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    component = configs.build(name)
    description = manifest(name, component)
    verilog_path = out / f"{name}.v"
    json_path = out / f"{name}.json"
    verilog_path.write_text(to_verilog(component, name))
    json_path.write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    return verilog_path, json_path


def write_configs(names, out_dir) -> list[Path]:
    """Write every configuration in ``names`` (all when empty); return the written paths."""
    names = list(names) or configs.config_names()
    for name in names:
        if name not in configs.config_names():
            raise ValueError(f"--config must be one of {', '.join(configs.config_names())}, not {name!r}")
    written = []
    for name in track(names, "rtl generate", unit="config"):
        written.extend(write_config(name, out_dir))
    return written
