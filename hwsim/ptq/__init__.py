"""Post-training quantization recipes: composable passes ``(graph, stats) -> graph``.

Why here (in ``hwsim``, not ``models``): a recipe transforms hwsim's own graph IR and reads calibration
statistics of hwsim's float executor; it needs no importer, so ONNX, SmolLM2, MiniLM and LLM-config graphs
(and the co-design sweep, which lives in ``hwsim``) all use the same passes. One module per step:
:mod:`hwsim.ptq.rtn`, :mod:`hwsim.ptq.smoothquant`, :mod:`hwsim.ptq.rotation`,
:mod:`hwsim.ptq.gptq`, :mod:`hwsim.ptq.gom`, :mod:`hwsim.ptq.fixed_point`, :mod:`hwsim.ptq.llm_int8`,
:mod:`hwsim.ptq.fpq`, :mod:`hwsim.ptq.fpq_shift`, :mod:`hwsim.ptq.aqas`,
:mod:`hwsim.ptq.dint_alpha`, :mod:`hwsim.ptq.awq`;
the interface is :mod:`hwsim.ptq.recipe`.
"""

from hwsim.ptq.aqas import AQAS
from hwsim.ptq.awq import AWQ
from hwsim.ptq.dint_alpha import DintAlpha
from hwsim.ptq.fixed_point import FixedPoint
from hwsim.ptq.fpq import FPQ
from hwsim.ptq.fpq_shift import FPQShift
from hwsim.ptq.gom import GOM
from hwsim.ptq.gptq import GPTQ
from hwsim.ptq.llm_int8 import LLMInt8
from hwsim.ptq.recipe import Recipe, RecipeStep, apply_recipe, load_recipe, preset_names, register_step
from hwsim.ptq.rotation import Rotation
from hwsim.ptq.rtn import RTN
from hwsim.ptq.smoothquant import SmoothQuant

#: The built-in steps (imported above so they register); importers may register more.
BUILTIN_STEPS = (RTN, SmoothQuant, Rotation, GPTQ, GOM, FixedPoint, LLMInt8, FPQ, AQAS, AWQ, DintAlpha, FPQShift)

__all__ = ["BUILTIN_STEPS", "Recipe", "RecipeStep", "apply_recipe", "load_recipe", "preset_names", "register_step"]
