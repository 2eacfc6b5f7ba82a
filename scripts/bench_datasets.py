"""Scale check of the post-build commands (variants, export, report) on a synthetic run the size
of WebVid-CoVR (1,644,276 triplets by default, ~12.7 triplets per target with a long tail) and a
CleanVid-15M-map-shaped metadata CSV with bare video ids (so every lookup takes the bare-id path).

Prints and optionally writes a JSON with wall seconds per command; ``--check`` recomputes the
variant counts with a plain pandas implementation and fails on any difference.

    python scripts/bench_datasets.py --triplets 1644276 --workdir /tmp/bench_datasets --check
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.products.export import export_covr_csv
from covr_datagen.pipeline.products.report import write_report
from covr_datagen.pipeline.products.variants import write_variants
from covr_datagen.schemas import TRIPLETS

WORDS = np.array(["cat", "dog", "red", "blue", "car", "bus", "sea", "sky", "man", "woman"])
CATEGORIES = np.array(["Nature", "Animals", "Travel", "Food", "City", "Sports", "People", "Business"])


def webvid_ids(values: np.ndarray) -> pa.Array:
    return pa.array([f"{v // 50 * 50:06d}_{v // 50 * 50 + 49:06d}/{v}" for v in values.tolist()])


def make_run(root: Path, n: int, seed: int, extra_metadata: int = 0) -> tuple[RunDir, Path]:
    """A run directory with triplets / caption_pairs / media_pairs / manifest, and a metadata CSV
    covering the run's media plus ``extra_metadata`` rows of media not in the run."""
    rng = np.random.default_rng(seed)
    n_targets = max(2, int(n / 12.7))
    n_media = 2 * n_targets
    weights = rng.lognormal(0.0, 1.2, n_targets)
    target = rng.choice(n_targets, size=n, p=weights / weights.sum())
    query = rng.integers(0, n_media, n)
    w1, w2 = WORDS[rng.integers(0, len(WORDS), n)], WORDS[rng.integers(0, len(WORDS), n)]
    table = pa.table({
        "pth1": webvid_ids(query), "pth2": webvid_ids(target),
        "edit": pa.array([f"Change {a} for {b}" for a, b in zip(w1, w2)]),
        "txt1": pa.array([f"a {a} in the park" for a in w1]),
        "txt2": pa.array([f"a {b} in the park" for b in w2]),
        "sim_txt": pa.array(rng.uniform(0.6, 0.96, n).astype(np.float32)),
        "scores": pa.array([[]] * n, pa.list_(pa.float32())),
        "triplet_id": pa.array([f"t{i}" for i in range(n)]),
        "corpus": pa.array(["synthetic"] * n), "media_kind": pa.array(["video"] * n),
        "sim_media": pa.array(rng.uniform(0.3, 0.95, n).astype(np.float32)),
        "word1": pa.array(w1), "word2": pa.array(w2), "direction": pa.array(["forward"] * n),
        "pair_id": pa.array([f"p{i // 3}" for i in range(n)]), "engine": pa.array(["rules"] * n),
        "model": pa.array(["rules"] * n), "seed": pa.array(np.zeros(n, dtype=np.int64)),
    }, schema=TRIPLETS)
    run = RunDir(root / "run")
    for name, t in (("triplets", table),
                    ("caption_pairs", pa.table({"sim_txt": table["sim_txt"].slice(0, n // 3)})),
                    ("media_pairs", pa.table({"sim_media": table["sim_media"]}))):
        run.table(name).mkdir(parents=True, exist_ok=True)
        pq.write_table(t, run.table(name) / "part-00000.parquet")
    run.write_manifest({"stages": [{"name": "triplets", "input": n, "kept": n, "dropped": {}}],
                        "config": {"corpus": {"name": "synthetic", "media_kind": "video"}},
                        "config_hash": "synthetic", "versions": {}})
    meta = root / "cleanvid_map.csv"
    with open(meta, "w", encoding="utf-8") as fh:
        fh.write("id,description,duration,aspectratio,videourl,author,categories,framerate,r18\n")
        for v in range(n_media + extra_metadata):
            cats = ", ".join(repr(str(c)) for c in CATEGORIES[rng.choice(len(CATEGORIES), 2, replace=False)])
            fh.write(f'{v},"clip {v}",PT00H00M10S,16:9,http://x/{v}.mp4,user{v % 997},"[{cats}]",25,'
                     f"{int(v % 50 == 0)}\n")
    return run, meta


def pandas_counts(run: RunDir, meta: Path) -> dict[str, int]:
    """The variant counts by a straightforward pandas implementation (independent of ours)."""
    import pandas as pd

    t = run.read_table("triplets", columns=["pth1", "pth2"]).to_pandas()
    m = pd.read_csv(meta, dtype=str)
    author = dict(zip(m["id"], m["author"]))
    cats = dict(zip(m["id"], m["categories"].map(lambda s: {c.lower() for c in ast.literal_eval(s)})))
    q, g = t["pth1"].str.rsplit("/", n=1).str[-1], t["pth2"].str.rsplit("/", n=1).str[-1]
    same_author = q.map(author) == g.map(author)
    same_cat = pd.Series([bool(a & b) for a, b in zip(q.map(cats), g.map(cats))])
    return {"same_author": int(same_author.sum()), "same_category": int(same_cat.sum()),
            "same_author_or_category": int((same_author | same_cat).sum())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triplets", type=int, default=1_644_276)
    parser.add_argument("--workdir", default="/tmp/bench_datasets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-metadata", type=int, default=0,
                        help="metadata rows for media outside the run (a full CleanVid map has ~15M)")
    parser.add_argument("--check", action="store_true", help="cross-check variant counts with pandas")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    root = Path(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    run, meta = make_run(root, args.triplets, args.seed, args.extra_metadata)
    results = {"triplets": args.triplets, "metadata_rows_outside_run": args.extra_metadata,
               "machine": platform.machine(), "python": platform.python_version(),
               "generate_s": round(time.perf_counter() - t0, 2)}
    steps = {
        "variants": lambda: write_variants(run, meta, root / "variants"),
        "export": lambda: export_covr_csv(run, root / "covr.csv", split={"val": 0.05, "test": 0.05},
                                          seed=0, media_ids="renumber"),
        "report": lambda: write_report(run),
    }
    for name, step in steps.items():
        t0 = time.perf_counter()
        out = step()
        results[f"{name}_s"] = round(time.perf_counter() - t0, 2)
        if name == "variants":
            results["variants"] = out["variants"]
        if name == "export":
            results["export_files"] = {k: {"rows": v["rows"], "targets": v["targets"]}
                                       for k, v in out["files"].items()}
            results["distinct_targets"] = sum(v["targets"] for v in out["files"].values())
    if args.check:
        expected = pandas_counts(run, meta)
        results["pandas_check"] = expected == results["variants"]
        if not results["pandas_check"]:
            print(json.dumps({"ours": results["variants"], "pandas": expected}, indent=2))
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if results.get("pandas_check", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
