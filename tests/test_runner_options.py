"""``--runner`` short names and how ``--workers`` combines with a runner."""

import argparse

import pytest

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.commands.build import beam_args_from
from covr_datagen.pipeline.run.runner_options import DASK_RUNNER, resolve_runner

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

    from covr_datagen.pipeline.run.dask_runner import DaskRunner

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


@pytest.mark.parametrize("runner", ["DaskRunner", "dask", "apache_beam.runners.dask.dask_runner.DaskRunner"])
def test_dask_options_are_known_under_every_dask_runner_name(runner):
    """The unknown-option check must load the options of the runner the short name selects:
    ``--dask_client_address`` was refused with ``--runner DaskRunner``."""
    from covr_datagen.pipeline.run.beam_options import check_beam_args

    check_beam_args(["--runner", runner, "--dask_client_address", "h:1"], [])
    with pytest.raises(ValueError, match="did you mean --dask_client_address"):
        check_beam_args(["--runner", runner, "--dask_clent_address", "h:1"], [])


def test_unreachable_dask_scheduler_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    corpus = tmp_path / "c.csv"
    corpus.write_text("videoid,contentUrl,duration,page_dir,name\n"
                      "1,u,PT00H00M10S,d,red car on a road\n2,u,PT00H00M10S,d,blue car on a road\n")
    assert cli_main(["build", "--corpus", str(corpus), "--format", "webvid", "--out",
                     str(tmp_path / "run"), "--no-media", "--runner", "DaskRunner",
                     "--dask_client_address", f"127.0.0.1:{port}",
                     "--dask_connection_timeout", "2"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert "Traceback" not in err and len(errors) == 1, err
    assert f"cannot connect to the dask scheduler at 127.0.0.1:{port}" in errors[0]
