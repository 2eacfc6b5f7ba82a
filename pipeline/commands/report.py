"""``covr-datagen report``: the HTML report (figures, funnel, samples) and the dataset card of a
run (see :mod:`covr_datagen.pipeline.products.report`)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    parser = sub.add_parser("report", help="write the HTML report and dataset card of a run")
    parser.add_argument("--run", required=True, help="run directory")
    parser.add_argument("--out", default=None, help="output folder (default RUN/report)")
    parser.add_argument("--sample", type=int, default=25, help="triplets shown in the sample table")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from covr_datagen.pipeline.products.report import write_report

    files = write_report(args.run, args.out, sample_size=args.sample, seed=args.seed)
    print(f"report: {files.html}")
    print(f"dataset card: {files.card}")
    print(f"figures: {len(files.pngs)} PNG files in {files.html.parent}")
    return 0
