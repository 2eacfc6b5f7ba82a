"""Which Beam runner a build uses: ``--runner`` short names and how ``--workers`` combines with it.

Beam itself accepts the short names of the runners it ships (``DirectRunner``, ``DataflowRunner``,
``FlinkRunner``, ``SparkRunner``, ``PrismRunner``..., case-insensitive, ``Runner`` optional) or a
dotted class path. ``DaskRunner`` is not among them, and Beam's own DaskRunner mishandles
multi-output steps, sinks and counters (:mod:`pipeline.run.dask_runner`), so ``DaskRunner`` and Beam's
dotted path both mean :class:`covr_datagen.pipeline.run.dask_runner.DaskRunner` here.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import StandardOptions

DASK_RUNNER = "covr_datagen.pipeline.run.dask_runner.DaskRunner"
_DASK_NAMES = {"dask", "daskrunner", "apache_beam.runners.dask.dask_runner.daskrunner",
               DASK_RUNNER.lower()}
#: runners for which --workers (DirectRunner multi-process mode) means something
_DIRECT_NAMES = {"direct", "directrunner", "switchingdirectrunner", "fnapirunner"}


def _short_names() -> dict[str, str]:
    """Lower-case short name (with and without ``runner``) -> the name to pass to Beam."""
    names = {}
    for path in StandardOptions.ALL_KNOWN_RUNNERS:
        short = path.rsplit(".", 1)[-1]
        names[short.lower()] = short
        names[short.lower().removesuffix("runner")] = short
    for name in _DASK_NAMES:
        names[name] = DASK_RUNNER
    return names


def runner_class_path(runner: str) -> str | None:
    """Dotted class path of the runner that ``--runner runner`` selects (short names as in
    :func:`resolve_runner`, or a dotted path as given); ``None`` for an unknown short name."""
    from apache_beam.runners.runner import _RUNNER_MAP

    if "." in runner and runner.lower() not in _DASK_NAMES:
        return runner
    short = _short_names().get(runner.lower())
    if short is None or "." in short:
        return short
    return _RUNNER_MAP.get(short.lower())


def _split_runner(beam_args: list[str]) -> tuple[str | None, list[str]]:
    """The ``--runner`` value of ``beam_args`` (the last one wins, as in Beam) and the other args."""
    runner, rest, i = None, [], 0
    while i < len(beam_args):
        arg = beam_args[i]
        if arg == "--runner":
            if i + 1 >= len(beam_args):
                raise ValueError("--runner needs a value, e.g. --runner DaskRunner")
            runner, i = beam_args[i + 1], i + 2
            continue
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return runner, rest


def resolve_runner(beam_args: list[str], workers: int | None) -> list[str]:
    """``beam_args`` with ``--runner`` resolved to a name Beam accepts, plus the DirectRunner
    options that ``--workers N`` stands for. Raises ``ValueError`` (one line) for an unknown
    runner name or ``--workers`` with a runner that is not the DirectRunner."""
    runner, rest = _split_runner(list(beam_args))
    resolved = None
    if runner is not None:
        resolved = _short_names().get(runner.lower())
        if resolved is None and "." not in runner:
            known = sorted({*(p.rsplit(".", 1)[-1] for p in StandardOptions.ALL_KNOWN_RUNNERS),
                            "DaskRunner"})
            raise ValueError(f"unknown --runner {runner!r}; use one of {', '.join(known)} "
                             "or a dotted class path")
        resolved = resolved or runner
        rest = ["--runner", resolved, *rest]
    if workers:
        if runner is not None and runner.lower() not in _DIRECT_NAMES:
            hint = (" (start N `dask worker` processes for the scheduler instead)"
                    if resolved == DASK_RUNNER else " (set the runner's own worker options)")
            raise ValueError(f"--workers sets the DirectRunner's local worker processes; it does "
                             f"not apply to --runner {runner}{hint}")
        rest += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}",
                 "--default_sdk_harness_log_level=WARNING"]
    return rest
