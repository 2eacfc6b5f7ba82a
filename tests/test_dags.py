"""The Airflow DAGs: they import cleanly, and a ``dag.test()`` run of the full flow on the demo
corpus (rules engine) produces the same triplets as the CLI. Airflow runs in a subprocess with
its own AIRFLOW_HOME (SQLite) so its configuration never leaks into other tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from covr_datagen.pipeline.core.rundir import RunDir
from tests.helpers import REPRODUCIBLE_YAML

REPO = Path(__file__).resolve().parents[1]

RUNNER = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}
if len(sys.argv) > 2:
    run = bag.dags[sys.argv[2]].test(run_conf=json.loads(sys.argv[3]))
    out["state"] = str(run.state)
    out["tasks"] = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("RESULT " + json.dumps(out))
"""


def airflow(tmp_path: Path, *args: str) -> dict:
    home = tmp_path / "airflow"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "COVR_DATAGEN_CLI": str(Path(sys.executable).parent / "covr-datagen")}
    airflow_bin = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow_bin), "db", "migrate"], env=env, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(REPO / "dags"), *args], env=env,
                          capture_output=True, text=True, cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_dags_import_without_errors(tmp_path):
    result = airflow(tmp_path)
    assert result["errors"] == {}
    assert result["dags"] == ["covr_datagen", "covr_datagen_subsets"]


@pytest.mark.slow
def test_full_flow_matches_the_cli(tmp_path, demo_run):
    config = tmp_path / "config.yaml"
    config.write_text(REPRODUCIBLE_YAML)
    corpus = Path(demo_run.root).parent / "corpus.csv"  # same file name -> same corpus name
    metadata = tmp_path / "meta.csv"
    ids = [r["media_id"] for r in demo_run.read_table("records").to_pylist()]
    metadata.write_text("id,author,categories\n" + "".join(
        f"{m},author{i % 3},cat{i % 2}\n" for i, m in enumerate(ids)))
    marker = tmp_path / "trainer_ran.txt"
    run_dir = tmp_path / "dag_run"
    conf = {"corpus": str(corpus), "run_dir": str(run_dir), "config": str(config),
            "media_root": str(demo_run.root / "media"),
            "metadata": str(metadata), "val_fraction": 0.2,
            "trainer_command": f"{sys.executable} -c \"import pathlib,sys; "
                               f"assert pathlib.Path('{{export}}'.replace('.csv','_train.csv')).exists() "
                               f"or pathlib.Path('{{export}}').exists(); "
                               f"pathlib.Path(r'{marker}').write_text('ok')\""}
    result = airflow(tmp_path, "covr_datagen", json.dumps(conf))
    assert result["state"] == "success", result
    assert result["tasks"] == {"mtg_train": "skipped", "build": "success", "variants": "success",
                               "export": "success", "report": "success",
                               "train_model": "success"}
    assert marker.read_text() == "ok"
    dag_run = RunDir(run_dir)
    assert demo_run.count_rows("triplets") > 100
    assert dag_run.read_table("triplets").sort_by("triplet_id").equals(
        demo_run.read_table("triplets").sort_by("triplet_id"))
    assert (run_dir / "variants").is_dir()
    assert any((run_dir / "export").glob("*.csv"))
