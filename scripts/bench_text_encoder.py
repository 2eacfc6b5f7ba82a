"""Benchmark text-encoder precisions: speed and agreement with float32 on real one-word pairs.

Reads the ``mined_pairs`` table of a run directory (``covr-datagen build ... --until mine``),
embeds the distinct captions of (up to ``--max-pairs``) pairs once per precision, and reports
for each precision: captions per second (and the ratio to float32 measured in the same process),
how far its cosines move from float32's, and how many pairs change side of the similarity band
(``pair_filters.sim_min`` / ``sim_max`` of the default config). With several
``--batch-sizes`` (or ``--length-orders``) every precision is measured at each; the reference is
float32 at the first.

``int8-dynamic`` is not a pipeline option: it is torch's dynamic int8 quantization of the
model's linear layers, measured here because it was the obvious CPU speed-up (and rejected).

    .venv/bin/python scripts/bench_text_encoder.py --run out/demo --dtypes float32 mixed-bfloat16
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from covr_datagen.pipeline.config import Config  # noqa: E402
from covr_datagen.pipeline.text.encoders import TextEncoder  # noqa: E402


def load_pairs(run: Path, max_pairs: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Distinct caption texts and ``(n, 2)`` indices into them for a seeded sample of pairs."""
    import pyarrow.parquet as pq

    table = pq.read_table(run / "mined_pairs", columns=["txt1", "txt2"]).to_pydict()
    n = len(table["txt1"])
    pick = np.random.default_rng(seed).permutation(n)[:max_pairs]
    texts: dict[str, int] = {}
    index = np.array([[texts.setdefault(table[col][i], len(texts)) for col in ("txt1", "txt2")]
                      for i in pick], dtype=np.int64).reshape(-1, 2)
    return list(texts), index


INT8_DYNAMIC = "int8-dynamic"


def embed_timed(model: str, dtype: str, threads: int, texts: list[str],
                batch_size: int, length_order: str = "tokens") -> tuple[np.ndarray, float]:
    """Embeddings of ``texts`` and captions/s (model loading and one warm-up batch excluded)."""
    encoder = TextEncoder(model, batch_size=batch_size,
                          dtype="float32" if dtype == INT8_DYNAMIC else dtype, threads=threads,
                          length_order=length_order)
    encoder.setup()
    if dtype == INT8_DYNAMIC:
        import torch

        encoder._st = torch.ao.quantization.quantize_dynamic(encoder._st, {torch.nn.Linear},
                                                             dtype=torch.qint8)
    encoder.encode(texts[:batch_size])
    start = time.perf_counter()
    vecs = encoder.encode(texts)
    return vecs, len(texts) / (time.perf_counter() - start)


def band(sims: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """-1 too different, 0 kept, 1 too similar (the similarity filter's decision)."""
    return np.where(sims <= lo, -1, np.where(sims >= hi, 1, 0))


def main(argv: list[str] | None = None) -> int:
    defaults = Config()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="run directory holding mined_pairs/")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "mixed-bfloat16", "bfloat16"])
    ap.add_argument("--model", default=defaults.text_encoder.model)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    ap.add_argument("--batch-sizes", type=int, nargs="+",
                    default=[defaults.text_encoder.batch_size])
    ap.add_argument("--length-orders", nargs="+", default=["tokens"],
                    choices=TextEncoder.LENGTH_ORDERS,
                    help="what batches are sorted by (chars: the order before token sorting)")
    ap.add_argument("--max-pairs", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON results file")
    args = ap.parse_args(argv)
    if "float32" in args.dtypes:
        args.dtypes.remove("float32")
    args.dtypes.insert(0, "float32")

    texts, index = load_pairs(Path(args.run), args.max_pairs, args.seed)
    lo, hi = defaults.pair_filters.sim_min, defaults.pair_filters.sim_max
    print(f"[bench] {len(index):,} pairs, {len(texts):,} distinct captions; band ({lo}, {hi})",
          file=sys.stderr)
    results, ref_sims, ref_rate = [], None, None
    for order, batch_size, dtype in itertools.product(args.length_orders, args.batch_sizes,
                                                      args.dtypes):
        vecs, rate = embed_timed(args.model, dtype, args.threads, texts, batch_size, order)
        sims = np.einsum("ij,ij->i", vecs[index[:, 0]], vecs[index[:, 1]])
        if ref_sims is None:
            ref_sims, ref_rate = sims, rate
        delta = np.abs(sims - ref_sims)
        changed = band(sims, lo, hi) != band(ref_sims, lo, hi)
        results.append({"dtype": dtype, "batch_size": batch_size, "length_order": order,
                        "threads": args.threads,
                        "captions_per_s": round(rate, 1),
                        "speedup_vs_reference": round(rate / ref_rate, 2),
                        "max_abs_dcos": float(delta.max()), "p99_abs_dcos": float(np.quantile(delta, 0.99)),
                        "band_changes": int(changed.sum()), "pairs": len(index)})
        print(json.dumps(results[-1]), flush=True)
    print("| dtype | batch | sorted by | captions/s | vs reference | max abs Δcos | p99 abs Δcos | "
          "band decisions changed |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['dtype']} | {r['batch_size']} | {r['length_order']} | "
              f"{r['captions_per_s']:.0f} | "
              f"{r['speedup_vs_reference']:.2f}x | "
              f"{r['max_abs_dcos']:.4f} | {r['p99_abs_dcos']:.4f} | "
              f"{r['band_changes']} of {r['pairs']:,} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"argv": sys.argv, "results": results}, indent=1),
                                  encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
