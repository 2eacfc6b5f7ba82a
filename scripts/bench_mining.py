"""Benchmark caption-pair mining: the real ``covr-datagen build`` on synthetic WebVid-style corpora.

For each size: generate the corpus (:mod:`pipeline.devtools.synth`, cached by size and seed), then run
``covr-datagen build --until pair_filters`` with ``--mining exact`` in each runner mode
(``direct``: default DirectRunner; ``workers2``: ``--workers 2``; ``dask2``: ``--runner DaskRunner``
on a dask scheduler and two single-threaded ``dask worker`` processes started on 127.0.0.1 for
the build, :mod:`covr_datagen.pipeline.run.local_dask`), and ``--mining faiss --until mine`` for the sizes in
``--faiss-sizes``. Each build is a subprocess; its wall time and the peak resident memory of its
whole process tree (sum of RSS over the process and all descendants, and for ``dask2`` the
scheduler's and workers', polled every 0.2 s) are recorded together with the manifest's
per-stage input/kept/dropped/seconds (the cluster's start-up is not in the wall time).
faiss recall = pairs in both ``mined_pairs`` tables / pairs in exact's ``mined_pairs`` (before
pair filters). Results go to ``--out`` as JSON and a Markdown table on stdout.

With ``--word-diffs 1 2 3``: exact mining for each ``mining.max_word_diff`` and faiss once,
``--until mine`` (:func:`bench_word_diffs`), with keys per caption, mined pairs and faiss recall
per k; ``--max-seconds`` / ``--max-rss-gb`` stop a build that outgrows the machine.

Example::

    nice -n 10 .venv/bin/python scripts/bench_mining.py --sizes 100000 1000000 2000000 \\
        --faiss-sizes 100000 --workdir /tmp/bench --out /tmp/bench/bench_mining.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from covr_datagen.pipeline.core.rundir import RunDir  # noqa: E402
from covr_datagen.pipeline.devtools.synth import SynthConfig, generate_captions, write_corpus  # noqa: E402

MODES = {"direct": [], "workers2": ["--workers", "2"], "dask2": ["--runner", "DaskRunner"]}
#: modes that run on a local dask cluster of this many worker processes
DASK_WORKERS = {"dask2": 2}
#: the line ``build`` prints when a stage starts
STAGE_START = re.compile(r"^\[(\w+)\] running")


def tree_rss(proc) -> tuple[int, int]:
    """Resident bytes of psutil ``proc`` alone and with all its descendants (vanished: 0)."""
    import psutil

    own = total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            rss = p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        own = rss if p is proc else own
    return own, total


def run_measured(cmd: list[str], log: Path, poll: float = 0.2,
                 also: tuple[int, ...] = (), max_seconds: float | None = None,
                 max_rss_gb: float | None = None) -> dict:
    """Run ``cmd``; return wall seconds, peak tree RSS (overall and per stage) and exit code.

    Output goes to ``log``; the stage running at each poll is the last ``[name] running`` line
    the build printed there, so each RSS sample is attributed to a stage. Per stage, the peak of
    the whole process tree (plus the trees of the pids in ``also``) and of the launching (Beam
    runner) process alone are kept. Past ``max_seconds`` or ``max_rss_gb`` the whole process
    tree is killed and ``stopped`` says why.
    """
    import psutil

    start = time.monotonic()
    per_stage: dict[str, int] = {}
    driver: dict[str, int] = {}
    stage = "startup"
    stopped = None
    with open(log, "w", encoding="utf-8") as fh, open(log, encoding="utf-8",
                                                      errors="replace") as tail:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
        ps = psutil.Process(proc.pid)
        others = [psutil.Process(pid) for pid in also]
        while proc.poll() is None:
            for line in tail.readlines():
                match = STAGE_START.match(line)
                if match:
                    stage = match.group(1)
            try:
                own, rss = tree_rss(ps)
            except psutil.NoSuchProcess:
                break
            rss += sum(tree_rss(other)[1] for other in others)
            per_stage[stage] = max(per_stage.get(stage, 0), rss)
            driver[stage] = max(driver.get(stage, 0), own)
            elapsed = time.monotonic() - start
            if max_seconds is not None and elapsed > max_seconds:
                stopped = f"killed after {elapsed:.0f} s (limit {max_seconds:.0f} s) in {stage}"
            elif max_rss_gb is not None and rss > max_rss_gb * 2**30:
                stopped = (f"killed at {rss / 2**30:.1f} GiB RSS (limit {max_rss_gb} GiB) in "
                           f"{stage} after {elapsed:.0f} s")
            if stopped:
                os.killpg(proc.pid, 9)
                proc.wait()
                break
            time.sleep(poll)
    peak = max(per_stage.values(), default=0)
    return {"wall_s": round(time.monotonic() - start, 1), "peak_rss_gb": round(peak / 2**30, 2),
            "peak_rss_gb_by_stage": {k: round(v / 2**30, 2) for k, v in per_stage.items()},
            "runner_process_peak_rss_gb_by_stage": {k: round(v / 2**30, 2)
                                                    for k, v in driver.items()},
            "rc": proc.returncode, **({"stopped": stopped} if stopped else {})}


def corpus_for(size: int, seed: int, workdir: Path) -> Path:
    """The synthetic corpus of ``size`` captions (generated once, then reused)."""
    path = workdir / f"synth_{size}_seed{seed}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        write_corpus(tmp, SynthConfig(captions=size, seed=seed))
        tmp.rename(path)
    return path


def build_cmd(corpus: Path, out: Path, method: str, until: str, extra: list[str]) -> list[str]:
    """The ``covr-datagen build`` command line used for one measurement."""
    exe = Path(sys.executable).with_name("covr-datagen")
    return [str(exe), "build", "--corpus", str(corpus), "--format", "webvid", "--out", str(out),
            "--mining", method, "--until", until, "--force", *extra]


def stages_of(run: Path) -> list[dict]:
    """Per-stage ``name/input/kept/dropped/seconds`` from the run's manifest."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    return [{k: s[k] for k in ("name", "input", "kept", "dropped", "seconds")}
            for s in manifest["stages"]]


def pair_ids(run: Path) -> set[str]:
    """The ``pair_id`` column of a run's ``mined_pairs`` table."""
    import pyarrow.parquet as pq

    return set(pq.read_table(run / "mined_pairs", columns=["pair_id"])["pair_id"].to_pylist())


def remove_run(run: Path) -> None:
    """Delete an earlier benchmark run folder; refuse (exit) when it is not a run directory, so
    a user's folder of the same name is never deleted."""
    if not run.exists():
        return
    if not RunDir(run).is_run_dir():
        sys.exit(f"bench_mining: {run} exists and is not a covr-datagen run directory; "
                 "move it away or choose another --workdir")
    shutil.rmtree(run)


def bench_one(size: int, label: str, method: str, until: str, extra: list[str],
              corpus: Path, workdir: Path, keep_runs: bool) -> dict:
    """One measured build; returns its record (and leaves the run dir for recall)."""
    run = workdir / f"run_{size}_{label}"
    remove_run(run)
    mode = label.split("_", 1)[1]
    with contextlib.ExitStack() as stack:
        also: tuple[int, ...] = ()
        if mode in DASK_WORKERS:
            from covr_datagen.pipeline.run.local_dask import local_dask_cluster

            cluster = stack.enter_context(local_dask_cluster(workdir / f"dask_{size}_{label}",
                                                             DASK_WORKERS[mode]))
            extra = [*extra, "--dask_client_address", cluster.address]
            also = tuple(cluster.pids())
        cmd = build_cmd(corpus, run, method, until, extra)
        print(f"[bench] {size:,} {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        result = run_measured(cmd, workdir / f"log_{size}_{label}.txt", also=also)
    rec = {"size": size, "label": label, "method": method, "until": until,
           "command": " ".join(cmd), **result}
    if result["rc"] == 0:
        rec["stages"] = stages_of(run)
    shown = ("wall_s", "peak_rss_gb", "peak_rss_gb_by_stage", "rc")
    print(f"[bench] -> {json.dumps({k: rec[k] for k in shown})}", file=sys.stderr, flush=True)
    return rec


def exact_pair_codes(tokens: list[list[str]]) -> np.ndarray:
    """All one-word pairs ``i * n + j`` (``i < j``) by masked-key grouping (no hot-key cap)."""
    from covr_datagen.pipeline.mining.masked_keys import WordIds, masked_keys

    n = len(tokens)
    keys, cap, _ = masked_keys(tokens, WordIds())
    order = np.argsort(keys, kind="stable")
    keys, cap = keys[order], cap[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.concatenate([starts[1:], [len(keys)]])
    codes = []
    for a, b in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
        members = np.sort(cap[a:b])
        i, j = np.triu_indices(len(members), 1)
        codes.append(members[i] * n + members[j])
    return np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)


def gpu_knn(size: int, k: int, model_dir: str, seed_csv: str, batch: int = 1024) -> dict:
    """Embedding + exact inner-product kNN (what faiss ``IndexFlatIP`` computes) with torch on
    one GPU (CPU without one), and the recall of those neighbours against exact one-word
    grouping. Captions are those the pipeline would mine: >= 2 words, no template words
    (profanity not applied)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from covr_datagen.pipeline.text.normalize import normalize

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rec: dict = {"size": size, "k": k,
                 "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu"}

    def step(name: str) -> None:
        print(f"[gpu-knn {size:,}] {name} done at {time.monotonic() - t0:.1f}s", file=sys.stderr,
              flush=True)

    t0 = time.monotonic()
    start = time.monotonic()
    captions = generate_captions(SynthConfig(captions=size, seed_csv=seed_csv))
    templates = {"abstract", "background", "concept"}
    texts = sorted({t for t in map(normalize, captions)
                    if len(t.split(" ")) >= 2 and not templates & set(t.split(" "))
                    and "flag of" not in t})
    rec["captions_mined"] = len(texts)
    rec["generate_s"] = round(time.monotonic() - start, 1)
    step("generate")
    tokens = [t.split(" ") for t in texts]
    start = time.monotonic()
    exact = exact_pair_codes(tokens)
    rec["exact_pairs"], rec["exact_s"] = int(len(exact)), round(time.monotonic() - start, 1)
    step("exact grouping")

    model = SentenceTransformer(model_dir, device=device)
    model = model.half() if device == "cuda" else model.float()
    model.encode(texts[:2048], batch_size=batch)  # warm-up
    sync()
    start = time.monotonic()
    vecs = model.encode(texts, batch_size=batch, convert_to_tensor=True,
                        normalize_embeddings=True)
    sync()
    rec["embed_s"] = round(time.monotonic() - start, 2)
    rec["embed_per_s"] = round(len(texts) / rec["embed_s"])
    step("embed")
    start = time.monotonic()
    n = len(texts)
    neighbours = torch.empty((n, k + 1), dtype=torch.int64, device=device)
    for s in range(0, n, 2048):
        sims = vecs[s:s + 2048] @ vecs.T
        neighbours[s:s + 2048] = sims.topk(k + 1, dim=1).indices
    sync()
    rec["knn_s"] = round(time.monotonic() - start, 2)
    nb = neighbours.cpu().numpy()
    rows = np.repeat(np.arange(n, dtype=np.int64), k + 1)
    cols = nb.reshape(-1)
    keep = cols != rows
    found = np.unique(np.minimum(rows[keep], cols[keep]) * n + np.maximum(rows[keep], cols[keep]))
    rec["knn_candidate_pairs"] = int(len(found))
    rec["recall"] = round(float(np.isin(exact, found).mean()) if len(exact) else 1.0, 4)
    step("knn + recall")
    return rec


def mined(run: Path) -> dict[str, int]:
    """``pair_id -> word_diff`` of a run's ``mined_pairs`` table."""
    import pyarrow.parquet as pq

    table = pq.read_table(run / "mined_pairs", columns=["pair_id", "word_diff"])
    return dict(zip(table["pair_id"].to_pylist(), table["word_diff"].to_pylist()))


def mean_keys_per_caption(run: Path, max_diff: int, allow_length_change: bool) -> float:
    """Mean number of keys the exact miner emits per caption of the run's ``captions`` table."""
    import pyarrow.parquet as pq

    from covr_datagen.pipeline.mining.masked_keys import keys_per_caption

    words = np.asarray(pq.read_table(run / "captions", columns=["num_words"])["num_words"])
    lengths, counts = np.unique(words, return_counts=True)
    keys = sum(keys_per_caption(int(n), max_diff, allow_length_change) * int(c)
               for n, c in zip(lengths, counts))
    return round(keys / max(len(words), 1), 1)


def bench_word_diffs(size: int, ks: list[int], corpus: Path, workdir: Path, mode: str,
                     faiss: bool, length_change: bool, limits: dict) -> list[dict]:
    """Exact mining for each ``k`` in ``ks``, then (``faiss``) the faiss miner once with the
    largest ``k``, all ``--until mine`` in ONE run directory: the first build reads and filters
    the corpus (``--force``), the others resume from its ``captions`` table, so only ``mine``
    runs again (its config section changed). The faiss pairs with ``word_diff <= k`` are what a
    faiss build with ``max_word_diff k`` keeps (same neighbour lists, same rule), so one faiss
    build gives the recall for every ``k``."""
    run = workdir / f"run_{size}_kdiff"
    remove_run(run)
    extra_lc = ["--allow-length-change"] if length_change else []
    records, exact = [], {}
    steps = [("exact", k) for k in ks] + ([("faiss", max(ks))] if faiss else [])
    for i, (method, k) in enumerate(steps):
        cmd = build_cmd(corpus, run, method, "mine", [*MODES[mode], "--max-word-diff", str(k),
                                                      *extra_lc])
        if i:
            cmd.remove("--force")
        label = f"{method}_k{k}{'_lc' if length_change else ''}"
        print(f"[bench] {size:,} {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        result = run_measured(cmd, workdir / f"log_{size}_{label}.txt", **limits)
        rec = {"size": size, "label": label, "method": method, "max_word_diff": k,
               "allow_length_change": length_change, "command": " ".join(cmd), **result}
        if result["rc"] == 0:
            rec["stages"] = stages_of(run)
            pairs = mined(run)
            rec["mined_pairs"] = len(pairs)
            rec["mine_peak_rss_gb"] = result["peak_rss_gb_by_stage"].get("mine")
            if method == "exact":
                exact[k] = set(pairs)
                rec["keys_per_caption"] = mean_keys_per_caption(run, k, length_change)
            else:
                rec["recall_by_k"] = {}
                for j, truth in exact.items():
                    found = {p for p, d in pairs.items() if d <= j}
                    rec["recall_by_k"][j] = {"exact_pairs": len(truth), "faiss_pairs": len(found),
                                             "recall": round(len(truth & found) / max(len(truth), 1), 4),
                                             "faiss_only": len(found - truth)}
        shown = ("wall_s", "peak_rss_gb", "rc", "stopped", "mined_pairs", "recall_by_k")
        print(f"[bench] -> {json.dumps({key: rec.get(key) for key in shown})}", file=sys.stderr,
              flush=True)
        records.append(rec)
    return records


def markdown_word_diffs(records: list[dict]) -> str:
    """One row per build of :func:`bench_word_diffs` (mine stage only)."""
    lines = ["| captions | miner | k | wall s | mine s | peak RSS GiB (mine) | keys per caption | "
             "mined pairs | faiss recall vs exact |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in records:
        if r.get("rc") != 0:
            lines.append(f"| {r['size']:,} | {r['method']} | {r['max_word_diff']} | {r['wall_s']} | "
                         f"| {r['peak_rss_gb']} | | {r.get('stopped') or 'failed'} (rc {r['rc']}) | |")
            continue
        mine_s = {s["name"]: s["seconds"] for s in r["stages"]}.get("mine", 0)
        recall = "; ".join(f"k={j}: {v['recall']:.4f} ({v['faiss_pairs']:,} of {v['exact_pairs']:,})"
                           for j, v in r.get("recall_by_k", {}).items())
        lines.append(f"| {r['size']:,} | {r['method']} | {r['max_word_diff']} | {r['wall_s']} | "
                     f"{mine_s:.0f} | {r['mine_peak_rss_gb']} | {r.get('keys_per_caption', '')} | "
                     f"{r['mined_pairs']:,} | {recall} |")
    return "\n".join(lines)


def markdown(records: list[dict]) -> str:
    """One row per measured build, per-stage seconds in the last column."""
    lines = ["| captions | run | wall s | peak RSS GB | mined pairs | caption pairs | "
             "per-stage seconds |", "| ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in records:
        if r.get("rc") != 0:
            lines.append(f"| {r['size']:,} | {r['label']} | {r['wall_s']} | {r['peak_rss_gb']} | "
                         f"failed (rc {r['rc']}) | | |")
            continue
        st = {s["name"]: s for s in r["stages"]}
        mined = st.get("mine", {}).get("kept", "")
        kept = st.get("pair_filters", {}).get("kept", "")
        per = ", ".join(f"{s['name']} {s['seconds']:.0f}" for s in r["stages"])
        extra = f" (recall vs exact {r['recall']:.3f})" if "recall" in r else ""
        lines.append(f"| {r['size']:,} | {r['label']}{extra} | {r['wall_s']} | {r['peak_rss_gb']} "
                     f"| {mined:,} | {kept if kept == '' else f'{kept:,}'} | {per} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 2_000_000])
    ap.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES),
                    help="runners of the exact builds (none: only faiss, with --exact-runs)")
    ap.add_argument("--exact-runs", nargs="*", default=[], metavar="DIR",
                    help="finished exact runs (one per size, in --sizes order) to take the faiss "
                         "recall against instead of building exact again")
    ap.add_argument("--faiss-sizes", type=int, nargs="*", default=[100_000],
                    help="sizes at which to also run the faiss miner (CPU: hours at 1M)")
    ap.add_argument("--faiss-mode", default="direct", choices=list(MODES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp/bench_mining")
    ap.add_argument("--out", default=None, help="JSON results file (default: WORKDIR/bench.json)")
    ap.add_argument("--keep-runs", action="store_true", help="keep run directories")
    ap.add_argument("--gpu-knn", type=int, nargs="*", default=None, metavar="SIZE",
                    help="instead of builds: GPU embedding + exact kNN + recall at these sizes "
                         "(torch + sentence-transformers, CUDA when present; no Beam)")
    ap.add_argument("--model-dir", default=None, help="--gpu-knn: sentence-transformers model dir")
    ap.add_argument("--seed-csv", default="/work/shared/data/webvid10m_val.csv",
                    help="--gpu-knn: seed captions of the synthetic corpus")
    ap.add_argument("--k", type=int, default=100, help="--gpu-knn: neighbours per caption")
    ap.add_argument("--word-diffs", type=int, nargs="+", default=None, metavar="K",
                    help="instead of the runner comparison: exact mining (--until mine) with "
                         "mining.max_word_diff = each K, then faiss once with the largest K at the "
                         "sizes in --faiss-sizes, all in one run dir per size (see bench_word_diffs)")
    ap.add_argument("--allow-length-change", action="store_true",
                    help="--word-diffs: also mine pairs across lengths")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="kill a build running longer than this (recorded as stopped)")
    ap.add_argument("--max-rss-gb", type=float, default=None,
                    help="kill a build whose process tree holds more than this (recorded as stopped)")
    args = ap.parse_args(argv)

    if args.gpu_knn:
        results = []
        for size in args.gpu_knn:
            results.append(gpu_knn(size, args.k, args.model_dir, args.seed_csv))
            print(json.dumps(results[-1]), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1), encoding="utf-8")
        return 0

    import psutil

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else workdir / "bench.json"
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
                       f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
            "argv": sys.argv, "records": []}
    if args.exact_runs and (args.modes or len(args.exact_runs) != len(args.sizes)):
        ap.error("--exact-runs needs one run per size and --modes with no runner")
    records = meta["records"]
    if args.word_diffs:
        limits = {"max_seconds": args.max_seconds, "max_rss_gb": args.max_rss_gb}
        for size in args.sizes:
            corpus = corpus_for(size, args.seed, workdir)
            records.extend(bench_word_diffs(size, args.word_diffs, corpus, workdir,
                                            args.faiss_mode, size in args.faiss_sizes,
                                            args.allow_length_change, limits))
            out.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        print(markdown_word_diffs(records))
        print(f"[bench] results: {out}", file=sys.stderr)
        return 0 if all(r["rc"] == 0 for r in records) else 1
    for size in args.sizes:
        start = time.monotonic()
        corpus = corpus_for(size, args.seed, workdir)
        print(f"[bench] corpus {corpus} ({time.monotonic() - start:.0f}s)", file=sys.stderr)
        exact_run = None
        if args.exact_runs:
            exact_run = Path(args.exact_runs[args.sizes.index(size)])
        for label in args.modes:
            rec = bench_one(size, f"exact_{label}", "exact", "pair_filters", MODES[label],
                            corpus, workdir, args.keep_runs)
            records.append(rec)
            if rec["rc"] == 0 and exact_run is None:
                exact_run = workdir / f"run_{size}_exact_{label}"
            out.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if size in args.faiss_sizes:
            rec = bench_one(size, f"faiss_{args.faiss_mode}", "faiss", "mine",
                            MODES[args.faiss_mode], corpus, workdir, args.keep_runs)
            if rec["rc"] == 0 and exact_run is not None:
                exact, found = pair_ids(exact_run), pair_ids(workdir / f"run_{size}_{rec['label']}")
                rec["recall"] = len(exact & found) / max(len(exact), 1)
                rec["faiss_only_pairs"] = len(found - exact)
            records.append(rec)
            out.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if not args.keep_runs:
            for label in [*(f"exact_{m}" for m in args.modes), f"faiss_{args.faiss_mode}"]:
                remove_run(workdir / f"run_{size}_{label}")
    print(markdown(records))
    print(f"[bench] results: {out}", file=sys.stderr)
    return 0 if all(r["rc"] == 0 for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
