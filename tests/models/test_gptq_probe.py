"""The GPTQ calibration probe quantizes exactly as the recipe step does (float-model H), and its options act."""

import numpy as np
import pytest

from hwsim.ptq import apply_recipe
from hwsim.ptq.weight_quantizer import WeightQuantizer
from hwsim.qspec import weight_values


@pytest.mark.slow
def test_probe_matches_the_gptq_step_and_its_options_change_h():
    from hwsim.models.gptq_probe import hessians, perplexity, quantize_blocks
    from hwsim.models.run import smollm2_task

    task = smollm2_task(chunks=1, tokens=16, layers=1, calib_chunks=2)
    q = WeightQuantizer("int3", "group", 192)
    probe = quantize_blocks(task, q, method="gptq", damp=0.01, act_order=True, no_bos=False, sequential=False)
    step = apply_recipe(task.graph, {"recipe": [{"gptq": {"weights": "int3", "granularity": "group",
                                                          "group_size": 192}}]}, task.calibration)
    linears = [op for op in task.graph.ops if op.kind == "linear" and op.name.startswith("blk.")]
    assert len(linears) == 7
    for op in linears:
        expected = weight_values(step.tensors[op.inputs[1]].quant).astype(np.float32)
        np.testing.assert_array_equal(probe.weights[op.inputs[1]], expected, err_msg=op.name)
    t = linears[0].inputs[0]
    h_all = hessians(task.graph, task.calibration, {t}, no_bos=False)[t]
    h_no_bos = hessians(task.graph, task.calibration, {t}, no_bos=True)[t]
    assert h_all.shape == h_no_bos.shape and not np.allclose(h_all, h_no_bos)
    seq = quantize_blocks(task, q, method="gptq", damp=0.01, act_order=True, no_bos=False, sequential=True)
    op = linears[0]  # block 0 sees the float model either way
    np.testing.assert_array_equal(seq.weights[op.inputs[1]], probe.weights[op.inputs[1]])
    ppl, _ = perplexity(task, probe)
    assert np.isfinite(ppl) and ppl > 1.0
