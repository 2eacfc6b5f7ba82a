"""Generation speed of the default MTG engine (built-in SmolLM2-135M + shipped adapter) on CPU.

Real texts for real caption pairs (the shipped data's captions), the paper's sampling (top-k 200,
temperature 0.8), each text finished at its end-of-sequence token or line break, exactly as the
``triplets`` stage runs it. Reports texts/s per batch size, the model load time, and the load
average before and after (the development machines are shared: read the ratios).

    python scripts/bench_mtg_builtin.py --batch-sizes 1 8 16 32 64 --texts 128 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch

    from covr_datagen.mtg_llm.data import load_builtin_examples
    from covr_datagen.mtg_llm.engines import make_engine
    from covr_datagen.mtg_llm.pairs import EditPair
    from covr_datagen.pipeline.config import MtgConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    ap.add_argument("--texts", type=int, default=128, help="texts generated per batch size")
    ap.add_argument("--adapter", default=None, help="default: the shipped adapter; 'none': none")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--model-cache", help="where built-in models are converted")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = MtgConfig(device="cpu", model_cache=args.model_cache)
    if args.adapter:
        cfg.adapter = None if args.adapter.lower() == "none" else args.adapter
    pairs = [EditPair(e.caption1, e.caption2) for e in load_builtin_examples()][:args.texts]
    load_before = os.getloadavg()[0]
    engine = make_engine(cfg)
    start = time.perf_counter()
    engine.setup()
    load_s = time.perf_counter() - start
    print(f"loaded {engine.identity()['model']} in {load_s:.1f}s "
          f"(torch threads {torch.get_num_threads()})", flush=True)
    rows = []
    for bs in args.batch_sizes:
        start = time.perf_counter()
        texts = []
        for i in range(0, len(pairs), bs):
            texts.extend(engine.generate(pairs[i:i + bs]))
        sec = time.perf_counter() - start
        rows.append({"batch": bs, "texts": len(texts), "seconds": round(sec, 1),
                     "texts_per_s": round(len(texts) / sec, 2),
                     "empty": sum(not t for t in texts), "load_avg_1m": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    result = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "model": engine.identity()["model"], "load_s": round(load_s, 1),
              "load_avg_before": load_before, "generate": rows,
              "command": " ".join(["python scripts/bench_mtg_builtin.py", *sys.argv[1:]])}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
