"""Amaranth RTL generated from the hwsim specs (installed as ``hwsim.rtl``).

* :mod:`hwsim.rtl.pe` — ``PE(a_format, b_format, accumulator)``: one MAC lane with the golden model's
  exact fixed-point accumulation rule;
* :mod:`hwsim.rtl.requant_unit` — ``Requant(spec)``: the requant shifter of a ``RequantSpec``;
* :mod:`hwsim.rtl.tile` — ``SystolicTile``: an R x C weight-stationary systolic array of those MACs,
  generated from an architecture spec;
* :mod:`hwsim.rtl.norm_unit` — ``IntNormUnit``: the integer LayerNorm/RMSNorm of :mod:`hwsim.layernorm`;
* :mod:`hwsim.rtl.operands` — code -> fixed-point operand decoders derived from format specs;
* :mod:`hwsim.rtl.configs` — the named configurations that are generated, verified and sized;
* :mod:`hwsim.rtl.generate` / :mod:`hwsim.rtl.area` / :mod:`hwsim.rtl.commands` — ``hwsim rtl generate``
  (deterministic Verilog + JSON manifests) and ``hwsim rtl area`` (Yosys cell counts, NAND2 equivalents).

Every block publishes its ``latency`` from :mod:`hwsim.latency`, which the cycle model reads too.
Importing this package does not import Amaranth; the modules above do.
"""
