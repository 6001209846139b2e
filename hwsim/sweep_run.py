"""Run a sweep: plan chunks, evaluate them on local processes or a Dask cluster, stream them to the store.

Plans (``search.method``): ``grid`` numbers every point and cuts the numbers into chunks of
``chunk_size``; ``random`` draws ``samples`` distinct point numbers with a seeded generator (sorted,
then chunked); ``nsga2`` asks optuna's NSGA-II sampler for one generation of ``population`` points per
chunk and tells it the objectives of the chunk's rows (a resumed run re-tells finished generations
from the store, so the sampler's state is rebuilt exactly).

Executors: by default a process pool with one worker per core (``workers=1``: in this process); with
``dask`` (a scheduler address like ``tcp://10.0.0.5:8786``, or a ``distributed.Client``) the chunks
are submitted to the cluster. Workers receive the setup (spec + quantized workloads) once and return
DataFrames; only this process writes the store. At most ``2 * workers`` chunks are in flight, so the
memory of a sweep is bounded by the chunks in flight plus the final table.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.sweep import SweepSpec, check_points
from hwsim.sweep_eval import SweepSetup, evaluate_chunk, evaluate_chunk_reference
from hwsim.sweep_store import ChunkStore

__all__ = ["SweepRun", "run_sweep"]


@dataclass
class SweepRun:
    """What a finished sweep returns: the table, the store and timing."""

    frame: object
    store: ChunkStore
    evaluated: int
    skipped_chunks: int
    seconds: float


# -- workers -------------------------------------------------------------------------------------------
_SETUP: dict = {}


def _init_worker(setup: SweepSetup, reference: bool) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _SETUP["setup"], _SETUP["reference"] = setup, reference


def _pool_chunk(chunk_id: int, numbers: np.ndarray):
    return chunk_id, _evaluate(_SETUP["setup"], numbers, _SETUP["reference"])


def _evaluate(setup: SweepSetup, numbers, reference: bool):
    return (evaluate_chunk_reference if reference else evaluate_chunk)(setup, numbers)


def dask_chunk(setup: SweepSetup, chunk_id: int, numbers: np.ndarray, reference: bool = False):
    """The Dask task: evaluate one chunk (``setup`` arrives once per worker as a scattered future)."""
    return chunk_id, _evaluate(setup, numbers, reference)


def _dask_client(dask):
    """A ``distributed.Client`` for ``dask`` (a client, or a scheduler address to connect to)."""
    from hwsim.errors import HwsimError

    try:
        from distributed import Client
    except ImportError:
        raise HwsimError("--dask needs dask.distributed: pip install 'hwsim[sweep]'") from None
    if isinstance(dask, Client):
        return dask
    try:
        return Client(dask, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise HwsimError(f"--dask {dask}: cannot reach the Dask scheduler ({type(exc).__name__}: {exc})") from None


# -- plans ---------------------------------------------------------------------------------------------
def static_plan(spec: SweepSpec) -> list[np.ndarray]:
    """Point numbers of each chunk for ``grid`` and ``random`` searches."""
    if spec.search["method"] == "random":
        rng = np.random.default_rng(spec.search["seed"])
        count = min(spec.search["samples"], spec.size)
        numbers = np.sort(rng.choice(spec.size, size=count, replace=False)).astype(np.int64)
    else:
        numbers = None
    total = spec.size if numbers is None else len(numbers)
    out = []
    for lo in range(0, total, spec.chunk_size):
        hi = min(lo + spec.chunk_size, total)
        out.append(np.arange(lo, hi, dtype=np.int64) if numbers is None else numbers[lo:hi])
    return out


class _Executor:
    """Bounded submission of chunks to a process pool, this process, or a Dask client."""

    def __init__(self, setup: SweepSetup, *, workers: int | None, dask, reference: bool):
        self.setup, self.reference, self.dask = setup, reference, dask
        self.workers = workers or os.cpu_count() or 1
        self.pool = self.client = None
        if dask is not None:
            self.client = _dask_client(dask)
            self.remote_setup = self.client.scatter(setup, broadcast=True)
            self.workers = max(1, sum(self.client.nthreads().values()))
        elif self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(setup, reference))

    def run(self, jobs: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, object]]:
        """Yield ``(chunk_id, frame)`` as chunks finish (any order)."""
        if self.pool is None and self.client is None:
            for cid, numbers in jobs:
                yield cid, _evaluate(self.setup, numbers, self.reference)
            return
        pending, todo, limit = set(), list(reversed(jobs)), 2 * self.workers
        while todo or pending:
            while todo and len(pending) < limit:
                cid, numbers = todo.pop()
                pending.add(self._submit(cid, numbers))
            done, pending = self._wait(pending)
            for fut in done:
                yield fut.result()

    def _submit(self, cid, numbers):
        if self.client is not None:
            return self.client.submit(dask_chunk, self.remote_setup, cid, numbers, self.reference, pure=False)
        return self.pool.submit(_pool_chunk, cid, numbers)

    def _wait(self, pending):
        if self.client is not None:
            from distributed import wait

            res = wait(list(pending), return_when="FIRST_COMPLETED")
            return res.done, set(res.not_done)
        from concurrent.futures import FIRST_COMPLETED, wait

        done, rest = wait(pending, return_when=FIRST_COMPLETED)
        return done, rest

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.client is not None and isinstance(self.dask, str):  # a client we opened
            self.client.close()


# -- driver --------------------------------------------------------------------------------------------
def run_sweep(spec: SweepSpec, out_dir, *, workers: int | None = None, dask=None, reference: bool = False,
              cache_dir=None) -> SweepRun:
    """Evaluate every planned point of ``spec`` not yet in ``out_dir/store``; return the whole table.

    Parameters
    ----------
    spec : SweepSpec
    out_dir : path
        Sweep folder; its ``store`` holds the finished chunks (a re-run with the same spec resumes).
    workers : int, optional
        Local processes (default: all cores; 1 = this process).
    dask : str or distributed.Client, optional
        Run the chunks on this Dask cluster instead.
    reference : bool
        One ``simulate()`` per point instead of the cached/vectorised evaluation (same table).
    cache_dir : path, optional
        Accuracy cache (default ``out_dir/store/accuracy``).
    """
    from hwsim.progress import counter
    from hwsim.sweep_models import resolve_workloads

    t0 = time.perf_counter()
    check_points(spec)
    store = ChunkStore(Path(out_dir) / "store")
    store.open(spec.digest(), spec.data)
    workloads = resolve_workloads(spec, cache_dir or store.accuracy)
    setup = SweepSetup(spec, workloads)
    executor = _Executor(setup, workers=workers, dask=dask, reference=reference)
    evaluated = skipped = 0
    try:
        if spec.search["method"] == "nsga2":
            evaluated, skipped = _run_nsga2(spec, store, executor)
        else:
            plan = static_plan(spec)
            done = store.done()
            jobs = [(i, nums) for i, nums in enumerate(plan) if i not in done]
            skipped = len(plan) - len(jobs)
            total = sum(len(n) for n in plan)
            with counter(f"sweep {spec.name}", total, unit="pt", initial=total - sum(len(n) for _, n in jobs)) \
                    as advance:
                sizes = {i: len(n) for i, n in jobs}
                for cid, frame in executor.run(jobs):
                    store.write(cid, frame)
                    evaluated += sizes[cid]
                    advance(sizes[cid])
    finally:
        executor.close()
    return SweepRun(store.read_all(), store, evaluated, skipped, time.perf_counter() - t0)


def _run_nsga2(spec: SweepSpec, store: ChunkStore, executor: _Executor) -> tuple[int, int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pop = spec.search["population"]
    objectives = list(spec.objectives.items())
    sampler = optuna.samplers.NSGAIISampler(population_size=pop, seed=spec.search["seed"])
    study = optuna.create_study(directions=["maximize" if s == "max" else "minimize" for _, s in objectives],
                                sampler=sampler)
    strides = spec.strides()
    done = store.done()
    evaluated = skipped = 0
    seen: dict[int, list | None] = {}  # point -> objective values (None: dropped, failed or not finite)
    for gen in range(math.ceil(spec.search["trials"] / pop)):
        trials = [study.ask() for _ in range(pop)]
        numbers = [sum(t.suggest_int(f"axis{j}", 0, len(a.values) - 1) * s
                       for j, (a, s) in enumerate(zip(spec.axes, strides, strict=True))) for t in trials]
        new = np.unique([n for n in numbers if n not in seen]).astype(np.int64)
        if gen in done:
            frame = store.read(gen)
            skipped += 1
        else:  # every generation gets a chunk (maybe empty) so a resumed run replays the same tells
            _, frame = next(executor.run([(gen, new)])) if len(new) else (gen, _empty())
            store.write(gen, frame)
            evaluated += len(new)
        for n in new.tolist():
            seen[n] = None
        for _, row in frame.iterrows():
            values = [float(row[k]) if k in row.index else math.nan for k, _ in objectives]
            seen[int(row["point"])] = values if all(math.isfinite(v) for v in values) else None
        for trial, number in zip(trials, numbers, strict=True):
            values = seen.get(number)
            if values is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, values)
    return evaluated, skipped


def _empty():
    import pandas as pd

    return pd.DataFrame({"point": np.array([], dtype=np.int64)})
