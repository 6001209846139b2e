"""The same sweep on a Dask LocalCluster (2 worker processes) and on a local process pool: same table."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from hwsim.sweep import sweep_from_dict
from hwsim.sweep_run import run_sweep

distributed = pytest.importorskip("distributed")

WORKLOAD = {"name": "gemms", "ops": [{"name": "a", "type": "gemm", "m": 64, "k": 256, "n": 256},
                                     {"name": "b", "type": "gemm", "m": 64, "k": 256, "n": 1024}]}


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_table(tmp_path):
    (tmp_path / "wl.yaml").write_text(yaml.safe_dump(WORKLOAD))
    spec = sweep_from_dict({"name": "d", "workload": "wl.yaml", "chunk_size": 6,
                            "grid": {"array.rows": [8, 16, 32], "array.cols": [8, 16, 32],
                                     "array.dataflow": ["ws", "os"], "energy.technology_scale": [1.0, 0.5]}},
                           source=str(tmp_path / "s.yaml"), base_dir=tmp_path)
    local = run_sweep(spec, tmp_path / "local", workers=2).frame
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        remote = run_sweep(spec, tmp_path / "dask", dask=client)
        assert len(client.scheduler_info()["workers"]) == 2
    assert remote.evaluated == spec.size == len(remote.frame)
    pd.testing.assert_frame_equal(remote.frame, local)


@pytest.mark.slow  # the client retries for its 20 s connect timeout
def test_unreachable_scheduler_is_one_clear_error(tmp_path, capsys):
    from hwsim.cli import main

    (tmp_path / "wl.yaml").write_text(yaml.safe_dump(WORKLOAD))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"workload": "wl.yaml", "grid": {"array.rows": [8, 16]}}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dask", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "--dask tcp://127.0.0.1:1: cannot reach the Dask scheduler" in err and "Traceback" not in err
