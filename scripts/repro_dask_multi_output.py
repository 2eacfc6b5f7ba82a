"""Minimal reproduction: Beam's DaskRunner and a multi-output ParDo.

One DoFn yields dicts on its main output and ``TaggedOutput('odd', tuple)`` for odd numbers,
applied with ``.with_outputs('odd', main='main')``; each output has its own consumer, which
records what it receives in a file, and the DoFn counts its input with a Beam counter.

    .venv/bin/python scripts/repro_dask_multi_output.py            # Beam's DaskRunner
    FIXED=covr_datagen.pipeline.run.dask_runner.DaskRunner              # covr-datagen's
    .venv/bin/python scripts/repro_dask_multi_output.py --runner $FIXED

With Beam 2.77's ``apache_beam.runners.dask.dask_runner.DaskRunner`` (dask 2026.8) it prints
that the ``odd`` consumer received all 10 elements of both outputs, that the ``main`` consumer
never ran (only the last sink of the pipeline is computed) and that ``metrics()`` raises
``NotImplementedError``; exit code 1. With covr-datagen's runner every line says ``ok``.
The cluster is a local scheduler with two worker processes unless ``--address`` names one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

BEAM_DASK = "apache_beam.runners.dask.dask_runner.DaskRunner"


class SplitOddEven(beam.DoFn):
    def process(self, x: int):
        Metrics.counter("repro", "input").inc()
        if x % 2:
            yield beam.pvalue.TaggedOutput("odd", ("odd", x))
        else:
            yield {"even": x}


def record(element, path: str) -> None:
    with open(path, "a") as fh:
        fh.write(repr(element) + "\n")


def run(runner: str, address: str, folder: Path) -> list[str]:
    """Run the pipeline once; return one line per check (starting with ``ok`` or ``WRONG``)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = PipelineOptions(["--runner", runner, f"--dask_client_address={address}"])
    p = beam.Pipeline(options=options)
    outputs = (p | beam.Create(list(range(10)))
               | beam.ParDo(SplitOddEven()).with_outputs("odd", main="main"))
    for tag in ("main", "odd"):
        outputs[tag] | f"Record {tag}" >> beam.Map(record, str(folder / f"{tag}.txt"))
    result = p.run()
    try:
        result.wait_until_finish()
    finally:
        result.client.close()  # Beam's runner leaves its dask client open

    lines = []
    expected = {"main": [repr({"even": x}) for x in range(0, 10, 2)],
                "odd": [repr(("odd", x)) for x in range(1, 10, 2)]}
    for tag, want in expected.items():
        path = folder / f"{tag}.txt"
        got = sorted(path.read_text().splitlines()) if path.exists() else None
        if got is None:
            lines.append(f"WRONG {tag!r} consumer never ran")
        elif got != sorted(want):
            lines.append(f"WRONG {tag!r} consumer received {len(got)} elements: {', '.join(got)}")
        else:
            lines.append(f"ok    {tag!r} consumer received exactly its {len(want)} elements")
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace("repro"))["counters"]
        total = sum(c.committed for c in counters)
        lines.append(f"{'ok   ' if total == 10 else 'WRONG'} counter 'input' = {total} (want 10)")
    except NotImplementedError as err:
        lines.append(f"WRONG metrics() raises NotImplementedError: {err}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", default=BEAM_DASK, help=f"runner class (default {BEAM_DASK})")
    parser.add_argument("--address", help="scheduler address (default: a local 2-worker cluster)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.address:
            lines = run(args.runner, args.address, Path(tmp))
        else:
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None) as cluster:
                lines = run(args.runner, cluster.scheduler_address, Path(tmp))
    print(f"runner: {args.runner}")
    print("\n".join(lines))
    return 1 if any(line.startswith("WRONG") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
