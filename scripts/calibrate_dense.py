"""Calibrate the dense-text consistency threshold (``dense_filters.min_consistency``) for a text
encoder, on the calibration set shipped in ``scripts/data/dense_calibration.json``.

The set holds caption pairs (query ``txt1``, target ``txt2``) with texts written by hand: for
every pair a faithful ``dense`` text (reusing the captions' words) and an ``invented`` one
(changes the target does not show); for some pairs a faithful ``paraphrase`` (other words) and an
``embellished`` text (the faithful changes plus invented details). The script:

1. scores, with :class:`covr_datagen.filters.dense.ConsistencyFilter` itself (so the numbers are
   the filter's), each group of (text, target) pairs: ``faithful`` and ``paraphrase`` (with their
   own target), ``wrong_target`` (each dense text with the target of the item half the list
   away: a text written for another pair), ``invented`` and ``embellished`` (own target);
2. prints each group's distribution (min, 5th and 95th percentile, median, max);
3. sweeps the threshold over a 0.01 grid and prints, per value, the share of faithful texts
   (``faithful`` and ``paraphrase`` together) kept and of each negative group dropped; recommends
   the highest threshold that keeps at least ``--keep`` of each positive group (so that the
   verbatim texts, the larger group, cannot carry it alone);
4. checks that the other dense filters with their default settings (length, repetition,
   degenerate text) keep every faithful text.

Example::

    .venv/bin/python scripts/calibrate_dense.py --json /tmp/dense_calibration_scores.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from covr_datagen.filters.base import apply_filters
from covr_datagen.filters.dense import ConsistencyFilter
from covr_datagen.pipeline.config import DEFAULT_TEXT_ENCODER, DenseFilterConfig, TextEncoderConfig
from covr_datagen.pipeline.filter_sets import dense_text_filters
from covr_datagen.pipeline.text.encoders import TextEncoderSpec

CALIBRATION_SET = Path(__file__).resolve().parent / "data" / "dense_calibration.json"
#: groups of texts that should pass, and that should not
POSITIVE = ("faithful", "paraphrase")
NEGATIVE = ("wrong_target", "invented", "embellished")
GROUPS = POSITIVE + NEGATIVE


def load_items(path: str | Path = CALIBRATION_SET) -> list[dict]:
    """The calibration set's items (``id``, ``txt1``, ``txt2``, ``dense``, ``invented``, and
    optionally ``paraphrase`` and ``embellished``)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["items"]


def scoring_rows(items: list[dict]) -> dict[str, list[dict]]:
    """Triplet-like rows (``edit_dense``, ``txt1``, ``txt2``) of each group."""
    n = len(items)
    other = [items[(i + n // 2) % n] for i in range(n)]
    return {
        "faithful": [{**it, "edit_dense": it["dense"]} for it in items],
        "paraphrase": [{**it, "edit_dense": it["paraphrase"]} for it in items if "paraphrase" in it],
        "wrong_target": [{**it, "edit_dense": it["dense"], "txt2": o["txt2"], "target_of": o["id"]}
                         for it, o in zip(items, other)],
        "invented": [{**it, "edit_dense": it["invented"]} for it in items],
        "embellished": [{**it, "edit_dense": it["embellished"]} for it in items if "embellished" in it],
    }


def distribution(values: np.ndarray) -> dict[str, float]:
    """min, 5th percentile, median, 95th percentile, max (4 decimals)."""
    qs = np.percentile(values, [0, 5, 50, 95, 100])
    return {k: round(float(v), 4) for k, v in zip(("min", "p5", "median", "p95", "max"), qs)}


def sweep(scores: dict[str, np.ndarray], grid: np.ndarray) -> list[dict]:
    """Per threshold: share of faithful texts (both positive groups) kept, share of each
    negative group dropped."""
    positive = np.concatenate([scores[g] for g in POSITIVE])
    rows = []
    for t in grid:
        row = {"threshold": round(float(t), 2), "faithful_kept": float(np.mean(positive >= t)),
               "worst_group_kept": min(float(np.mean(scores[g] >= t)) for g in POSITIVE)}
        for group in NEGATIVE:
            row[f"{group}_dropped"] = float(np.mean(scores[group] < t))
        rows.append(row)
    return rows


def recommend(rows: list[dict], keep: float) -> dict:
    """The highest threshold keeping at least ``keep`` of each positive group."""
    eligible = [r for r in rows if r["worst_group_kept"] >= keep]
    return max(eligible, key=lambda r: r["threshold"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", default=str(CALIBRATION_SET), help="calibration set (JSON)")
    ap.add_argument("--encoder", default=DEFAULT_TEXT_ENCODER, help="text encoder id/path")
    ap.add_argument("--dtype", default="float32", help="text encoder precision")
    ap.add_argument("--keep", type=float, default=0.95,
                    help="share of each group of faithful texts to keep")
    ap.add_argument("--threshold", type=float, default=None,
                    help="also list the texts this threshold decides wrongly")
    ap.add_argument("--json", default=None, help="write every score and the sweep here")
    args = ap.parse_args(argv)

    items = load_items(args.set)
    groups = scoring_rows(items)
    spec = TextEncoderSpec(args.encoder, dtype=args.dtype)
    scorer = ConsistencyFilter(spec, min_consistency=0.0)
    scorer.setup()
    scores = {g: scorer.similarities(rows) for g, rows in groups.items()}

    print(f"{len(items)} items; encoder {args.encoder} ({args.dtype})")
    print(f"{'group':14s} {'n':>3s} " + " ".join(f"{k:>7s}" for k in ("min", "p5", "median", "p95", "max")))
    dists = {}
    for group in GROUPS:
        dists[group] = distribution(scores[group])
        print(f"{group:14s} {len(scores[group]):3d} " + " ".join(f"{v:7.3f}" for v in dists[group].values()))

    rows = sweep(scores, np.arange(0.0, 0.81, 0.01))
    columns = ["faithful_kept", "worst_group_kept"] + [f"{g}_dropped" for g in NEGATIVE]
    print("\nthreshold  " + "  ".join(columns))
    for r in rows:
        if 0.1 <= r["threshold"] <= 0.7 and round(r["threshold"] * 100) % 5 == 0:
            print(f"{r['threshold']:9.2f}  " + "  ".join(f"{r[c]:{len(c)}.3f}" for c in columns))
    best = recommend(rows, args.keep)
    print(f"\nhighest threshold keeping >= {args.keep:.0%} of each faithful group: {best['threshold']:.2f} ("
          + ", ".join(f"{c} {best[c]:.3f}" for c in columns) + ")")

    others = [f for f in dense_text_filters(DenseFilterConfig(), TextEncoderConfig())
              if not isinstance(f, ConsistencyFilter)]
    decisions = apply_filters(others, groups["faithful"])
    dropped = [(it["id"], d.reason) for it, d in zip(items, decisions) if d is not None]
    print(f"other dense filters (defaults) drop {len(dropped)} of {len(items)} faithful texts"
          + (f": {dropped}" if dropped else ""))

    if args.threshold is not None:
        print(f"\nwrong decisions at {args.threshold} (faithful dropped, negatives kept):")
        for group in GROUPS:
            for row, sim in sorted(zip(groups[group], scores[group]), key=lambda rs: rs[1]):
                if (sim >= args.threshold) != (group in POSITIVE):
                    verdict = "keep" if sim >= args.threshold else "drop"
                    print(f"  {group:12s} {sim:6.3f} {verdict}  {row['id']}: {row['edit_dense'][:80]!r}")

    if args.json:
        out = {"encoder": args.encoder, "dtype": args.dtype, "distributions": dists,
               "recommended": best, "sweep": rows, "other_filter_drops": dropped,
               "scores": {g: {row["id"]: round(float(s), 4) for row, s in zip(groups[g], scores[g])}
                          for g in GROUPS}}
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
        print(f"scores -> {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
