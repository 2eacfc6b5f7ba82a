"""A dask.distributed cluster on 127.0.0.1 made of separate processes, started the way one is
started on many machines (``dask scheduler`` + one ``dask worker`` per worker): what the dask
tests and ``scripts/bench_mining.py --modes dask2`` build on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


def _dask_cli() -> list[str]:
    """The ``dask`` command of this interpreter's environment."""
    return [str(Path(sys.executable).with_name("dask"))]


@dataclass
class LocalDaskCluster:
    """A running scheduler and its worker processes (``workers[i]`` is a ``Popen``)."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    def pids(self) -> list[int]:
        """Pids of the scheduler and ``dask worker`` processes (their children not included)."""
        return [self.scheduler.pid, *(w.pid for w in self.workers)]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def local_dask_cluster(folder: Path, n_workers: int = 2, timeout_s: float = 120) -> Iterator[
        LocalDaskCluster]:
    """Start ``dask scheduler`` and ``n_workers`` single-threaded ``dask worker`` processes on
    127.0.0.1 (logs in ``folder``); stop them all on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)  # a stale one would name a scheduler that is gone
    from covr_datagen.pipeline.text.encoders import LOCAL_WORKERS_ENV

    # the workers import the same code as this process (a development checkout included), and
    # their CPU models split the cores between them instead of each taking all
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           LOCAL_WORKERS_ENV: str(n_workers)}

    def spawn(name: str, *args: str) -> subprocess.Popen:
        log = open(folder / f"{name}.log", "w")
        return subprocess.Popen([*_dask_cli(), *args], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)

    scheduler = spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
                      "--no-dashboard", "--scheduler-file", str(scheduler_file))
    cluster = None
    try:
        deadline = time.monotonic() + timeout_s
        while not scheduler_file.exists():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start; see {folder}/scheduler.log")
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        cluster = LocalDaskCluster(address, scheduler)
        for i in range(n_workers):
            cluster.workers.append(spawn(f"worker-{i}", "worker", address, "--nthreads", "1",
                                         "--nworkers", "1", "--no-dashboard",
                                         "--host", "127.0.0.1", "--name", f"w{i}"))
        _wait_for_workers(address, n_workers, deadline)
        yield cluster
    finally:
        for proc in (cluster.workers if cluster else []):
            _stop(proc)
        _stop(scheduler)


def _wait_for_workers(address: str, n: int, deadline: float) -> None:
    from distributed import Client

    with Client(address, timeout=max(1.0, deadline - time.monotonic())) as client:
        client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
