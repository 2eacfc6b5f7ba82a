"""Resumable builds and runner modes: a build killed after the caption-pair stage resumes without
recomputing finished stages and ends with the same triplets; DirectRunner in-memory and
multi-process modes give the same output."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from covr_datagen.pipeline.commands.demo import demo_corpus_path
from covr_datagen.pipeline.core.rundir import RunDir
from tests.helpers import REPRODUCIBLE_YAML
from tests.run_tables import assert_same_tables, stage_counts

CLI = [sys.executable, "-m", "covr_datagen.pipeline.cli"]


def build_cmd(out: Path, *extra: str) -> list[str]:
    """The demo build with float64 text embeddings, so reruns are bit-identical."""
    config = out.parent / f"{out.name}-config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(REPRODUCIBLE_YAML)
    return [*CLI, "build", "--corpus", str(Path(demo_corpus_path())), "--format", "webvid",
            "--out", str(out), "--corpus-name", "corpus", "--config", str(config), *extra]


def final_table(run: RunDir):
    name = "triplets" if run.has_table("triplets") else "caption_pairs"
    key = "triplet_id" if name == "triplets" else "pair_id"
    return run.read_table(name).sort_by(key)


@pytest.mark.slow
def test_killed_build_resumes_from_last_complete_stage(tmp_path, demo_run):
    out = tmp_path / "run"
    media = ["--media-root", str(demo_run.root / "media")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(build_cmd(out, *media), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    marker = out / "_checkpoints" / "pair_filters.json"
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "build did not reach the caption-pair checkpoint"
    assert proc.poll() is None, "build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.stem for p in (out / "_checkpoints").glob("*.json")}
    assert {"read", "caption_filters", "mine", "pair_filters"} <= done_before
    assert "triplets" not in done_before and not (out / "triplets").exists()

    result = subprocess.run(build_cmd(out, *media), env=env, capture_output=True, text=True,
                            check=True)
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = {s["name"] for s in manifest["stages"] if s.get("skipped")}
    assert skipped == done_before, result.stderr  # finished stages skipped, the rest recomputed
    assert final_table(RunDir(out)).equals(final_table(demo_run))
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


@pytest.mark.slow
def test_in_memory_and_multi_processing_give_the_same_output(tmp_path, demo_run):
    out = tmp_path / "mp"
    subprocess.run(build_cmd(out, "--workers", "2", "--media-root", str(demo_run.root / "media")),
                   check=True, capture_output=True)
    mp, single = RunDir(out), demo_run
    assert single.count_rows("triplets") > 100
    assert "triplets" in assert_same_tables(mp, single)
    assert stage_counts(mp.read_manifest()) == stage_counts(single.read_manifest())
