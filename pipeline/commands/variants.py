"""``covr-datagen variants``: same-author / same-category / same-author-or-category subsets of a
run's triplets, from per-media metadata (see :mod:`covr_datagen.pipeline.products.variants`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    parser = sub.add_parser("variants", help="write the same-author / same-category subsets of a run")
    parser.add_argument("--run", required=True, help="run directory (or a folder of triplet Parquet)")
    parser.add_argument("--metadata", required=True,
                        help="per-media metadata: CleanVid-15M map CSV, or CSV/TSV/Parquet with an id column")
    parser.add_argument("--out", required=True, help="output folder (one sub-folder per variant)")
    parser.add_argument("--id-col", default=None,
                        help="id column of the metadata file (default: id, media_id, videoid or pth)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from covr_datagen.pipeline.core.rundir import RunDir
    from covr_datagen.pipeline.products.variants import VARIANTS, write_variants

    with RunDir(args.run).lock_if_run_dir():  # no build may rewrite it meanwhile
        summary = write_variants(args.run, args.metadata, args.out, id_col=args.id_col)
    total = summary["triplets"]
    print(f"{total:,} triplets; metadata matched by full id / bare id / ambiguous / missing:")
    for side, how in summary["matching"].items():
        print(f"  {side:6s} {how['full']:,} / {how['bare']:,} / {how['ambiguous']:,} / {how['missing']:,}")
    for name in VARIANTS:
        n = summary["variants"][name]
        share = f"{100 * n / total:.1f}%" if total else "-"
        print(f"  {name:26s} {n:,} ({share}) -> {Path(args.out) / name}")
    print(f"counts: {Path(args.out) / 'variants.json'}")
    return 0
