"""Calibrate the caption-pair similarity band (``pair_filters.sim_min`` / ``sim_max``) for a text
encoder, on the examples printed in the CoVR-2 paper and on pairs mined by our own pipeline.

The paper's thresholds (drop ``sim <= 0.6`` and ``sim >= 0.96``) are CLIP-text values; another
encoder puts the same pairs on another scale. This script:

1. scores every labelled paper example with the encoder: Appendix E.1 "too similar" (expected
   drop high) and "too different" (expected drop low), Table A.11 kept pairs, the Section 3.1
   pairing example and Table A.4 training pairs (expected kept), plus the E.1 digit / OOV pairs
   (dropped by other filters; shown for the scale only);
2. scores the ``mined_pairs`` table of each ``--mined`` run directory (unlabelled);
3. sweeps ``(sim_min, sim_max)`` over a grid and counts, per choice, the labelled examples it gets
   wrong (an expected-keep pair dropped, an expected-drop pair kept);
4. prints, for the thresholds under study (``--sim-min/--sim-max``, and the paper's 0.6/0.96),
   the decision for every example, so the documentation can say exactly what each keeps/drops.

Example::

    .venv/bin/python scripts/calibrate_similarity.py --mined /tmp/calib/run \\
        --sim-min 0.3 --sim-max 0.92 --json /tmp/calib/calibration.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from covr_datagen.pipeline.config import DEFAULT_TEXT_ENCODER  # noqa: E402
from covr_datagen.pipeline.text.encoders import TextEncoder  # noqa: E402

DEFAULT_EXAMPLES = "/work/shared/data/paper_examples.json"
PAPER_BAND = (0.6, 0.96)

#: group name -> what the paper did with those pairs ("keep", "drop_high", "drop_low", "other")
EXPECTED = {
    "E1_too_similar": "drop_high",
    "E1_too_different": "drop_low",
    "E1_digit": "other",
    "E1_oov": "other",
    "A11_kept": "keep",
    "S31_pairing": "keep",
    "A4_training": "keep",
    "mined": "unlabelled",
}


@dataclass
class Scored:
    """One scored caption pair."""

    group: str
    txt1: str
    txt2: str
    sim: float


def paper_pairs(path: str | Path) -> list[tuple[str, str, str]]:
    """``(group, caption1, caption2)`` for every labelled pair in the paper-examples file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    e1 = data["filtered_pairs_appendix_E1"]
    out: list[tuple[str, str, str]] = []
    for key, group in (("too_similar_clip_ge_0.96", "E1_too_similar"),
                       ("too_different_clip_le_0.6", "E1_too_different"),
                       ("digit_difference", "E1_digit"),
                       ("out_of_vocabulary_difference", "E1_oov")):
        out += [(group, a, b) for a, b in e1[key]]
    out += [("A11_kept", r["caption1"], r["caption2"]) for r in data["mtg_vs_rule_based_table_A11"]]
    s31 = data["one_word_pairing_section_3_1"]
    out += [("S31_pairing", s31["caption"], other) for other in s31["pairs_with"]]
    out += [("A4_training", r["caption1"], r["caption2"])
            for r in data["mtg_added_training_examples_table_A4"]]
    return out


def mined_pairs(run_dirs: list[str]) -> list[tuple[str, str, str]]:
    """``("mined", txt1, txt2)`` for every row of each run's ``mined_pairs`` table."""
    import pyarrow.parquet as pq

    out: list[tuple[str, str, str]] = []
    for run in run_dirs:
        table_dir = Path(run) / "mined_pairs"
        if not table_dir.exists():
            raise FileNotFoundError(f"{table_dir} not found: run `covr-datagen build ... "
                                    f"--until mine --out {run}` first")
        table = pq.read_table(table_dir, columns=["txt1", "txt2"])
        out += [("mined", a, b) for a, b in zip(table["txt1"].to_pylist(),
                                                table["txt2"].to_pylist())]
    return out


def score(pairs: list[tuple[str, str, str]], encoder: TextEncoder) -> list[Scored]:
    """Cosine similarity of every pair, each distinct text embedded once."""
    texts = sorted({t for _, a, b in pairs for t in (a, b)})
    vectors = dict(zip(texts, encoder.encode(texts)))
    return [Scored(g, a, b, float(np.dot(vectors[a], vectors[b]))) for g, a, b in pairs]


def decision(sim: float, sim_min: float, sim_max: float) -> str:
    """The band filter's decision (same inclusive rule as ``filters.similarity``)."""
    if sim >= sim_max:
        return "drop_high"
    if sim <= sim_min:
        return "drop_low"
    return "keep"


def errors(scored: list[Scored], sim_min: float, sim_max: float) -> list[Scored]:
    """Labelled examples whose decision differs from what the paper did with them."""
    wrong = []
    for s in scored:
        want = EXPECTED[s.group]
        if want in ("keep", "drop_high", "drop_low"):
            if decision(s.sim, sim_min, sim_max) != want:
                wrong.append(s)
    return wrong


def sweep(scored: list[Scored], step: float = 0.001) -> list[dict]:
    """Error counts over a ``step`` grid of bands, sorted by (errors, widest band)."""
    labelled = [s for s in scored if EXPECTED[s.group] in ("keep", "drop_high", "drop_low")]
    sims = np.array([s.sim for s in labelled])
    want = np.array([EXPECTED[s.group] for s in labelled])
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
    low = sims[None, :] <= grid[:, None]  # [lo, example]: dropped as too different
    high = sims[None, :] >= grid[:, None]  # [hi, example]: dropped as too similar
    rows = []
    for i, lo in enumerate(grid):
        drop_low = low[i][None, :]
        drop_high = high[i + 1:] & ~drop_low
        keep = ~drop_low & ~drop_high
        wrong = (np.where(want == "keep", ~keep, False)
                 | np.where(want == "drop_low", ~drop_low, False)
                 | np.where(want == "drop_high", ~drop_high, False)).sum(axis=1)
        rows += [{"sim_min": float(lo), "sim_max": float(hi), "errors": int(e)}
                 for hi, e in zip(grid[i + 1:], wrong)]
    rows.sort(key=lambda r: (r["errors"], -(r["sim_max"] - r["sim_min"])))
    return rows


def summary(scored: list[Scored]) -> dict[str, dict]:
    """Per-group count, min, median, max of the similarity."""
    out = {}
    for group in EXPECTED:
        sims = np.array([s.sim for s in scored if s.group == group])
        if len(sims):
            out[group] = {"n": int(len(sims)), "min": round(float(sims.min()), 4),
                          "median": round(float(np.median(sims)), 4),
                          "max": round(float(sims.max()), 4)}
    return out


def report(scored: list[Scored], bands: list[tuple[float, float]]) -> str:
    """Plain-text table: every example with its similarity and the decision under each band."""
    head = ["group", "sim"] + [f"{lo}/{hi}" for lo, hi in bands] + ["pair"]
    lines = ["\t".join(head)]
    for s in sorted(scored, key=lambda s: (list(EXPECTED).index(s.group), s.sim)):
        cells = [s.group, f"{s.sim:.4f}"] + [decision(s.sim, lo, hi) for lo, hi in bands]
        lines.append("\t".join(cells + [f"{s.txt1!r} ~ {s.txt2!r}"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", default=DEFAULT_TEXT_ENCODER, help="text encoder id/path")
    ap.add_argument("--examples", default=DEFAULT_EXAMPLES, help="paper_examples.json")
    ap.add_argument("--mined", action="append", default=[],
                    help="run directory holding a mined_pairs table (repeatable)")
    ap.add_argument("--sim-min", type=float, default=None, help="proposed lower threshold")
    ap.add_argument("--sim-max", type=float, default=None, help="proposed upper threshold")
    ap.add_argument("--json", default=None, help="write every score and the sweep here")
    args = ap.parse_args(argv)

    pairs = paper_pairs(args.examples) + mined_pairs(args.mined)
    encoder = TextEncoder(args.encoder)
    scored = score(pairs, encoder)
    bands = [PAPER_BAND]
    if args.sim_min is not None and args.sim_max is not None:
        bands.append((args.sim_min, args.sim_max))
    print(report(scored, bands))
    print("\nper-group similarity:")
    for group, stats in summary(scored).items():
        print(f"  {group:18s} {stats}")
    best = sweep(scored)
    print("\nbest bands on the labelled examples (fewest errors, widest first):")
    for row in best[:5]:
        print(f"  {row}")
    fewest = best[0]["errors"]
    optimal = [r for r in best if r["errors"] == fewest]
    print(f"  {len(optimal)} bands reach {fewest} errors: sim_min in "
          f"[{min(r['sim_min'] for r in optimal)}, {max(r['sim_min'] for r in optimal)}], "
          f"sim_max in [{min(r['sim_max'] for r in optimal)}, "
          f"{max(r['sim_max'] for r in optimal)}]")
    for lo, hi in bands:
        wrong = errors(scored, lo, hi)
        mined = [s for s in scored if s.group == "mined"]
        kept = sum(decision(s.sim, lo, hi) == "keep" for s in mined)
        print(f"\nband {lo}/{hi}: {len(wrong)} labelled errors; mined pairs kept {kept}/{len(mined)}")
        for s in wrong:
            print(f"  wrong: {s.group} {s.sim:.3f} {s.txt1!r} ~ {s.txt2!r}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "encoder": args.encoder, "scores": [asdict(s) for s in scored],
            "summary": summary(scored), "sweep_top": best[:50],
            "bands": {f"{lo}/{hi}": [asdict(s) for s in errors(scored, lo, hi)]
                      for lo, hi in bands}}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
