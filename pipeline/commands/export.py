"""``covr-datagen export``: write a run's triplets (or a variant's) in a consumer's format;
``covr-csv`` is what the CoVR-BLIP-2 trainer reads (see :mod:`covr_datagen.pipeline.products.export`)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from covr_datagen.pipeline.products.export import FORMATS, VARIANTS
    from covr_datagen.pipeline.products.trainer_ids import ID_MODES

    parser = sub.add_parser("export", help="export triplets for a trainer (CoVR CSV + configs)")
    parser.add_argument("--run", required=True,
                        help="run directory, or a folder of triplet Parquet (e.g. a variant)")
    parser.add_argument("--format", choices=FORMATS, default="covr-csv", help="output format")
    parser.add_argument("--variant", choices=VARIANTS, default="edit",
                        help="edit: the one-word modification texts; dense: the triplets with a "
                             "dense text (mtg.mode dense), which goes into edit (the one-word text "
                             "into edit_short)")
    parser.add_argument("--out", required=True,
                        help="CSV file; with --split, FILE_train.csv, FILE_val.csv, FILE_test.csv")
    parser.add_argument("--split", default=None, metavar="val=F,test=F",
                        help="held-out validation/test fractions of the targets, disjoint from "
                             "training by media and caption pair, one row per target")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    parser.add_argument("--media-ids", choices=ID_MODES, default="keep",
                        help="keep the run's media ids (validated with the trainer's rules) or "
                             "renumber them to {folder}/{number} (writes FILE.media_map.csv)")
    parser.add_argument("--link-media", default=None, metavar="DIR",
                        help="symlink the media under DIR/{trainer id}.mp4|jpg|png for the trainer")
    parser.add_argument("--media-dir", default=None, metavar="DIR",
                        help="media folder written into the trainer config (default: --link-media)")
    parser.add_argument("--emb-dir", default=None, metavar="DIR",
                        help="embedding folder written into the trainer config (default: next to "
                             "the media folder, where CoVR's save_blip2_embs_vids.py writes)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from covr_datagen.pipeline.core.rundir import RunDir
    from covr_datagen.pipeline.products.export import TRAINER_DEFAULT_MAX_WORDS, export_covr_csv
    from covr_datagen.pipeline.products.heldout import parse_split

    split = parse_split(args.split) if args.split is not None else None
    with RunDir(args.run).lock_if_run_dir():  # no build may rewrite it meanwhile
        summary = export_covr_csv(args.run, args.out, split=split, seed=args.seed,
                                  media_ids=args.media_ids, link_dir=args.link_media,
                                  media_dir=args.media_dir, emb_dir=args.emb_dir,
                                  variant=args.variant)
    for name, info in summary["files"].items():
        print(f"{name}: {info['rows']:,} triplets, {info['targets']:,} targets -> {info['path']}")
    removed = {k: v for k, v in summary["dropped"].items() if v}
    if removed:
        print("left out: " + ", ".join(f"{k} {v:,}" for k, v in removed.items()))
    if summary["split"]:
        wanted, found = summary["split"]["targets_wanted"], summary["split"]["targets_found"]
        for name in wanted:
            if found[name] < wanted[name]:
                print(f"warning: {name} has {found[name]:,} of the {wanted[name]:,} targets asked "
                      "for (the others share media or caption pairs with another split)")
    if summary["rows_with_scores"] == 0:
        print("note: scores are empty in every row (the run's media encoder has no text tower, "
              "e.g. pixels): the trainer will average target frames instead of weighting them")
    links = summary["media_links"]
    if links:
        print(f"media links: {links['linked']:,} under {links['dir']}"
              + (f", {links['missing']:,} media files not found, e.g. "
                 + ", ".join(links["example_missing"]) if links["missing"] else ""))
    if summary["variant"] == "dense" and summary["texts_over_trainer_max_words"]:
        print(f"note: {summary['texts_over_trainer_max_words']:,} dense texts have more than "
              f"{TRAINER_DEFAULT_MAX_WORDS} words, where the CoVR trainer's pre_caption cuts by "
              "default: raise its max_words to train on whole texts (docs/DATASETS.md)")
    for name, path in summary["trainer_configs"].items():
        print(f"trainer {name} config -> {path}")
    return 0
