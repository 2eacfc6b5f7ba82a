"""``--runner`` short names and how ``--workers`` combines with a runner."""

import argparse

import pytest

from pipeline.cli import main as cli_main
from pipeline.commands.build import beam_args_from
from pipeline.runner_options import DASK_RUNNER, resolve_runner

DIRECT_MP = ["--direct_running_mode=multi_processing", "--direct_num_workers=2",
             "--default_sdk_harness_log_level=WARNING"]


@pytest.mark.parametrize("typed, passed", [
    ("DaskRunner", DASK_RUNNER), ("dask", DASK_RUNNER), ("daskrunner", DASK_RUNNER),
    ("apache_beam.runners.dask.dask_runner.DaskRunner", DASK_RUNNER),
    ("DirectRunner", "DirectRunner"), ("direct", "DirectRunner"),
    ("DataflowRunner", "DataflowRunner"), ("flink", "FlinkRunner"), ("SparkRunner", "SparkRunner"),
    ("PrismRunner", "PrismRunner"), ("my.module.MyRunner", "my.module.MyRunner"),
])
def test_short_names_resolve_to_what_beam_accepts(typed, passed):
    assert resolve_runner(["--runner", typed, "--project", "p"], None) == [
        "--runner", passed, "--project", "p"]
    assert resolve_runner([f"--runner={typed}"], None) == ["--runner", passed]


def test_the_resolved_names_are_runners_beam_creates():
    from apache_beam.runners.runner import create_runner

    from pipeline.dask_runner import DaskRunner

    assert isinstance(create_runner(resolve_runner(["--runner", "DaskRunner"], None)[1]), DaskRunner)
    assert type(create_runner(resolve_runner(["--runner", "direct"], None)[1])).__name__ == \
        "SwitchingDirectRunner"


def test_unknown_runner_is_one_clear_line():
    with pytest.raises(ValueError, match=r"unknown --runner 'Daskk'; use one of .*DaskRunner.*"
                                         r"DirectRunner.*FlinkRunner"):
        resolve_runner(["--runner", "Daskk"], None)
    with pytest.raises(ValueError, match="--runner needs a value"):
        resolve_runner(["--runner"], None)


def test_workers_apply_to_the_direct_runner_only():
    assert resolve_runner([], 2) == DIRECT_MP
    assert resolve_runner(["--runner", "DirectRunner"], 2) == ["--runner", "DirectRunner", *DIRECT_MP]
    with pytest.raises(ValueError, match=r"does not apply to --runner DaskRunner \(start N `dask "
                                         r"worker` processes"):
        resolve_runner(["--runner", "DaskRunner"], 2)
    with pytest.raises(ValueError, match="does not apply to --runner FlinkRunner"):
        resolve_runner(["--runner", "FlinkRunner"], 2)


def test_build_command_uses_it():
    args = argparse.Namespace(beam_args=["--runner", "dask", "--dask_client_address", "h:1"],
                              workers=None)
    assert beam_args_from(args) == ["--runner", DASK_RUNNER, "--dask_client_address", "h:1"]


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    base = ["build", "--corpus", str(tmp_path / "c.csv"), "--format", "webvid", "--out",
            str(tmp_path / "run")]
    assert cli_main([*base, "--runner", "Sparky"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown --runner 'Sparky'" in err[0]
    assert cli_main([*base, "--runner", "DaskRunner", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--workers sets the DirectRunner's local worker processes" in err[0]
    assert not (tmp_path / "run").exists()
