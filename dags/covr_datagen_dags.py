"""Airflow DAGs for covr-datagen (Airflow 3 API).

Every task runs the same ``covr-datagen`` command a person would type, so a DAG run and a manual
run produce the same files. Two DAGs:

* ``covr_datagen``: (optional) fine-tune the MTG adapter -> build -> (optional) variants ->
  export -> report -> (optional) launch a trainer command;
* ``covr_datagen_subsets``: only the filtered subsets (variants + their export) of an existing run.

The CLI is found from the ``cli`` param, else ``$COVR_DATAGEN_CLI``, else the ``.venv`` next to
this repository, else ``covr-datagen`` on ``PATH`` — so Airflow may live in its own environment.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

REPO = Path(__file__).resolve().parents[1]
DEMO_CORPUS = str(REPO / "pipeline" / "data" / "demo_corpus.csv")


def find_cli(explicit: str | None = None) -> str:
    """Path of the ``covr-datagen`` executable the tasks call."""
    for candidate in (explicit, os.environ.get("COVR_DATAGEN_CLI"),
                      str(REPO / ".venv" / "bin" / "covr-datagen")):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("covr-datagen")
    if not found:
        raise FileNotFoundError("covr-datagen CLI not found: set the 'cli' param or "
                                "$COVR_DATAGEN_CLI")
    return found


def run_cli(args: list[str]) -> None:
    """Run ``covr-datagen ARGS`` (output streams into the task log); fail the task on error."""
    params = get_current_context()["params"]
    cmd = [find_cli(params.get("cli") or None), *args]
    print("running:", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def build_args(params: dict) -> list[str]:
    """``covr-datagen build`` arguments from the DAG params."""
    args = ["build", "--corpus", params["corpus"], "--format", params["format"],
            "--out", params["run_dir"]]
    for flag, key in (("--config", "config"), ("--media-root", "media_root"),
                      ("--mtg-engine", "mtg_engine"),
                      ("--mtg-endpoint", "mtg_endpoint"), ("--mtg-base-model", "mtg_base_model")):
        if params.get(key):
            args += [flag, str(params[key])]
    if params.get("mtg_train_data"):
        args += ["--mtg-adapter", str(Path(params["run_dir"]) / "mtg_adapter")]
    if params.get("no_media"):
        args.append("--no-media")
    if params.get("force"):
        args.append("--force")
    args += shlex.split(params.get("runner_args") or "")
    return args


COMMON_PARAMS = {
    "cli": Param("", type="string", description="covr-datagen executable (empty: auto-detect)"),
    "run_dir": Param("out/dag/run", type="string", description="run directory"),
}

with DAG(
    dag_id="covr_datagen",
    description="Corpus -> composed-retrieval triplets (CoVR-2 method), variants, export, report",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={
        **COMMON_PARAMS,
        "corpus": Param(DEMO_CORPUS, type="string"),
        "format": Param("webvid", enum=["webvid", "cc3m", "csv", "jsonl", "parquet"]),
        "config": Param("", type="string", description="YAML/JSON config file (optional)"),
        "runner_args": Param("", type="string",
                             description="Beam pipeline options, e.g. '--runner FlinkRunner ...'"),
        "media_root": Param("", type="string"),
        "no_media": Param(False, type="boolean"),
        "mtg_engine": Param("", enum=["", "rules", "hf", "vllm"],
                            description="empty: the config's engine (mtg.engine)"),
        "mtg_endpoint": Param("", type="string"),
        "mtg_base_model": Param("", type="string"),
        "mtg_train_data": Param([], type="array", description="JSONL files; empty: no training"),
        "metadata": Param("", type="string", description="per-media metadata for the variants"),
        "val_fraction": Param(0.0, type="number"),
        "trainer_command": Param("", type="string",
                                 description="shell command run last; {export} is replaced by "
                                             "the exported CSV path"),
        "force": Param(False, type="boolean"),
    },
    tags=["covr-datagen"],
) as covr_datagen:

    @task
    def mtg_train() -> None:
        """Fine-tune the MTG-LLM LoRA adapter (skipped without training data)."""
        p = get_current_context()["params"]
        if not p["mtg_train_data"]:
            raise AirflowSkipException("no mtg_train_data: using the configured engine as is")
        run_cli(["mtg", "train", "--data", *p["mtg_train_data"], "--base-model",
                 p["mtg_base_model"], "--out", str(Path(p["run_dir"]) / "mtg_adapter")])

    @task(trigger_rule="none_failed")
    def build() -> None:
        """Corpus -> caption pairs -> media pairs -> triplets."""
        run_cli(build_args(get_current_context()["params"]))

    @task
    def variants() -> None:
        """Same-author / same-category subsets (skipped without metadata)."""
        p = get_current_context()["params"]
        if not p["metadata"]:
            raise AirflowSkipException("no metadata file: no variants")
        run_cli(["variants", "--run", p["run_dir"], "--metadata", p["metadata"],
                 "--out", str(Path(p["run_dir"]) / "variants")])

    @task(trigger_rule="none_failed")
    def export() -> None:
        """CoVR-BLIP-2 trainer CSV."""
        p = get_current_context()["params"]
        args = ["export", "--run", p["run_dir"], "--format", "covr-csv",
                "--out", str(Path(p["run_dir"]) / "export" / "covr.csv")]
        if p["val_fraction"]:
            args += ["--split", f"val={p['val_fraction']}"]
        run_cli(args)

    @task(trigger_rule="none_failed")
    def report() -> None:
        """HTML report + dataset card."""
        run_cli(["report", "--run", get_current_context()["params"]["run_dir"]])

    @task(trigger_rule="none_failed")
    def train_model() -> None:
        """Launch the downstream trainer command given in the params (skipped when empty)."""
        p = get_current_context()["params"]
        if not p["trainer_command"]:
            raise AirflowSkipException("no trainer_command")
        command = p["trainer_command"].replace(
            "{export}", str(Path(p["run_dir"]) / "export" / "covr.csv"))
        print("running:", command, flush=True)
        subprocess.run(command, shell=True, check=True)

    mtg_train() >> build() >> variants() >> export() >> report() >> train_model()


with DAG(
    dag_id="covr_datagen_subsets",
    description="Filtered subsets (same author / category) of an existing run, and their export",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={**COMMON_PARAMS,
            "metadata": Param(type="string", description="per-media metadata file"),
            "out": Param("", type="string", description="default: <run_dir>/variants")},
    tags=["covr-datagen"],
) as covr_datagen_subsets:

    @task
    def subsets() -> None:
        p = get_current_context()["params"]
        run_cli(["variants", "--run", p["run_dir"], "--metadata", p["metadata"],
                 "--out", p["out"] or str(Path(p["run_dir"]) / "variants")])

    subsets()
