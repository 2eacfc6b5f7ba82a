"""``covr-datagen export``: write a run's triplets (or a variant's) in a consumer's format;
``covr-csv`` is the CSV the CoVR-BLIP-2 trainer reads (see :mod:`pipeline.export`)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from pipeline.export import FORMATS

    parser = sub.add_parser("export", help="export triplets for a trainer (CoVR CSV)")
    parser.add_argument("--run", required=True,
                        help="run directory, or a folder of triplet Parquet (e.g. a variant)")
    parser.add_argument("--format", choices=FORMATS, default="covr-csv", help="output format")
    parser.add_argument("--out", required=True,
                        help="CSV file; with --split-val, FILE_train.csv and FILE_val.csv instead")
    parser.add_argument("--split-val", type=float, default=None, metavar="FRACTION",
                        help="fraction of distinct targets (pth2) moved to a validation file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pipeline.export import export_covr_csv

    summary = export_covr_csv(args.run, args.out, split_val=args.split_val, seed=args.seed)
    for name, info in summary["files"].items():
        print(f"{name}: {info['rows']:,} triplets, {info['targets']:,} targets -> {info['path']}")
    if summary["ids_not_trainer_compatible"]:
        print(f"warning: {summary['ids_not_trainer_compatible']:,} media ids are not "
              "{page_dir}/{videoid} ids the CoVR trainer can resolve, e.g. "
              + ", ".join(summary["example_bad_ids"][:3]))
    return 0
