"""The build on a real dask.distributed cluster: a scheduler and two worker processes on 127.0.0.1,
started by the tests (``dask scheduler`` / ``dask worker``, as on many machines).

* covr-datagen's DaskRunner fixes what Beam 2.77's gets wrong (scripts/repro_dask_multi_output.py),
  and Beam's still gets it wrong (when it stops, the workaround can go);
* the demo build, text-only and with media, gives the DirectRunner's tables and counts;
* a worker killed in the middle of a stage: the stage reruns the lost tasks or fails, and
  nothing incomplete is committed.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from distributed import Client

from covr_datagen.pipeline.commands.demo import demo_corpus_path
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.run.build import BuildRequest, run_build
from covr_datagen.pipeline.run.local_dask import local_dask_cluster
from covr_datagen.pipeline.run.runner_options import DASK_RUNNER
from tests.helpers import REPRODUCIBLE_YAML, reproducible_config
from tests.run_tables import assert_same_tables, stage_counts

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CAPTION_TABLES = ("records", "captions", "mined_pairs", "caption_pairs")
CAPTION_STAGES = ("read", "caption_filters", "mine", "pair_filters")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_dask_cluster(tmp_path_factory.mktemp("dask"), n_workers=2) as running:
        yield running


def _repro():
    spec = importlib.util.spec_from_file_location("repro", REPO / "scripts" /
                                                  "repro_dask_multi_output.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_multi_output_sinks_and_counters(cluster, tmp_path):
    repro = _repro()
    ours = repro.run(DASK_RUNNER, cluster.address, tmp_path / "ours")
    assert all(line.startswith("ok") for line in ours), ours
    beams = repro.run(repro.BEAM_DASK, cluster.address, tmp_path / "beam")
    assert any("'odd' consumer received 10 elements" in line for line in beams), beams


def _note(element, path: str) -> str:
    token = uuid.uuid4().hex
    with open(path, "a") as fh:
        fh.write(token + "\n")
    return token


def test_finish_bundle_outputs_and_side_inputs_computed_once(cluster, tmp_path):
    notes = tmp_path / "notes.txt"
    p = beam.Pipeline(options=PipelineOptions(["--runner", DASK_RUNNER,
                                               f"--dask_client_address={cluster.address}"]))
    token = p | "Once" >> beam.Create([None]) | "Note" >> beam.Map(_note, str(notes))
    sizes = (p | beam.Create(list(range(300))) | beam.Reshuffle()
             | beam.BatchElements(min_batch_size=7, max_batch_size=7) | beam.Map(len))
    seen = (sizes | "Tag" >> beam.Map(lambda n, t: (t, n), beam.pvalue.AsSingleton(token))
            | "Again" >> beam.Map(lambda tn, t: (tn[0], t, tn[1]), beam.pvalue.AsSingleton(token)))
    seen | "Out" >> beam.Map(lambda row, path: open(path, "a").write(f"{row}\n"),
                             str(tmp_path / "rows.txt"))
    p.run().wait_until_finish()
    assert len(notes.read_text().split()) == 1  # the side input's producer ran once
    rows = [eval(line) for line in (tmp_path / "rows.txt").read_text().splitlines()]
    assert sum(n for _, _, n in rows) == 300  # BatchElements' last batch (finish_bundle) arrives
    assert {(a, b) for a, b, _ in rows} == {(notes.read_text().strip(),) * 2}


class _SplitThirds(beam.DoFn):
    def process(self, x):
        yield beam.pvalue.TaggedOutput("thirds", x) if x % 3 == 0 else x


def test_flatten_of_a_tagged_output_that_feeds_a_side_input(cluster, tmp_path):
    """The exact miner's shape: a multi-output ParDo's main output, flattened, is both the main
    input and (combined) a side input of one consumer (it came out empty before the fix)."""
    rows = tmp_path / "rows.txt"
    p = beam.Pipeline(options=PipelineOptions(["--runner", DASK_RUNNER,
                                               f"--dask_client_address={cluster.address}"]))
    split = (p | beam.Create(list(range(30)))
             | beam.ParDo(_SplitThirds()).with_outputs("thirds", main="rest"))
    flat = [split.rest] | "Flatten" >> beam.Flatten()
    seen = flat | "All" >> beam.combiners.ToList()
    (flat | "Known" >> beam.Filter(lambda x, all_: x in all_, beam.pvalue.AsSingleton(seen))
     | "Out" >> beam.Map(lambda x, path: open(path, "a").write(f"{x}\n"), str(rows)))
    p.run().wait_until_finish()
    assert sorted(int(x) for x in rows.read_text().split()) == [x for x in range(30) if x % 3]


def _dask_build(out: Path, cluster, *extra: str, **popen) -> subprocess.Popen:
    """The demo corpus built by the CLI on the dask cluster, float64 text embeddings."""
    config = out.parent / f"{out.name}-config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(REPRODUCIBLE_YAML)
    cmd = [sys.executable, "-m", "covr_datagen.pipeline.cli", "build", "--corpus", demo_corpus_path(),
           "--format", "webvid", "--out", str(out), "--corpus-name", "corpus", "--config",
           str(config), "--runner", "DaskRunner", "--dask_client_address", cluster.address, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            **popen)


def _finish(proc: subprocess.Popen, timeout: float = 900) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return err


@pytest.fixture(scope="module")
def direct_text_only(tmp_path_factory):
    """The demo corpus, text-only, on the DirectRunner (one process)."""
    config = reproducible_config()
    config.media.enabled = False
    config.corpus.name = "corpus"
    config.corpus.format = "webvid"
    out = tmp_path_factory.mktemp("direct_text") / "run"
    run_build(BuildRequest(demo_corpus_path(), str(out)), config)
    return RunDir(out)


def test_text_only_build_equals_the_direct_runner(cluster, tmp_path, direct_text_only):
    out = tmp_path / "run"
    _finish(_dask_build(out, cluster, "--no-media"))
    run = RunDir(out)
    manifest = run.read_manifest()
    assert manifest["complete"] and [s["name"] for s in manifest["stages"]] == [
        s["name"] for s in direct_text_only.read_manifest()["stages"]]
    for stage in manifest["stages"]:
        assert stage["input"] == stage["kept"] + sum(stage["dropped"].values()), stage
    assert stage_counts(manifest) == stage_counts(direct_text_only.read_manifest())
    assert "triplets" in assert_same_tables(run, direct_text_only)
    assert run.count_rows("triplets") > 100
    assert not list(out.rglob("beam-temp-*"))  # every sink finalised its files


def test_media_build_equals_the_direct_runner(cluster, tmp_path, demo_run):
    out = tmp_path / "run"
    _finish(_dask_build(out, cluster, "--media-root", str(demo_run.root / "media")))
    run = RunDir(out)
    assert stage_counts(run.read_manifest()) == stage_counts(demo_run.read_manifest())
    compared = assert_same_tables(run, demo_run)
    assert {"media_embeddings", "media_pairs", "triplets"} <= set(compared)


def _busy_worker_pid(address: str, timeout: float = 120) -> int:
    """Pid of a worker process that is running a task right now."""
    with Client(address) as client:
        pids = client.run(os.getpid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                return pids[busy[0]]
            time.sleep(0.05)
    raise AssertionError("no worker was running a task")


def test_killed_worker_commits_nothing_incomplete(cluster, tmp_path, direct_text_only):
    """SIGKILL a worker process while ``pair_filters`` runs: its tasks are rerun on the other
    worker (or the stage fails); nothing of the stage is committed before its counts reconcile,
    the committed result is the DirectRunner's, and a later build resumes from it."""
    out = tmp_path / "run"
    proc = _dask_build(out, cluster, "--no-media", "--until", "pair_filters")
    deadline = time.monotonic() + 600
    while not list((out / ".staging").glob("pair_filters-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "pair_filters never started"
        time.sleep(0.05)
    killed = _busy_worker_pid(cluster.address)
    os.kill(killed, signal.SIGKILL)
    assert not (out / "caption_pairs").exists()  # still running: nothing committed
    assert RunDir(out).read_checkpoint("pair_filters") is None
    proc.communicate(timeout=900)
    run = RunDir(out)
    if proc.returncode != 0:  # the stage failed: nothing of it, earlier stages intact
        assert not (out / "caption_pairs").exists() and run.read_checkpoint("pair_filters") is None
        assert run.read_checkpoint("mine") is not None
        _finish(_dask_build(out, cluster, "--no-media", "--until", "pair_filters"))
    manifest = run.read_manifest()
    assert [s["name"] for s in manifest["stages"]] == list(CAPTION_STAGES)
    assert stage_counts(manifest) == stage_counts(direct_text_only.read_manifest())[:4]
    assert_same_tables(run, direct_text_only, CAPTION_TABLES)
    assert not list(out.rglob("beam-temp-*"))
    with Client(cluster.address) as client:  # the worker died (its nanny started a new one)
        assert killed not in client.run(os.getpid).values()
    # resuming on the cluster: the committed stages are skipped, the rest completes the build
    _finish(_dask_build(out, cluster, "--no-media"))
    manifest = run.read_manifest()
    assert [s["name"] for s in manifest["stages"] if s.get("skipped")] == list(CAPTION_STAGES)
    assert stage_counts(manifest) == stage_counts(direct_text_only.read_manifest())
    assert "triplets" in assert_same_tables(run, direct_text_only)
