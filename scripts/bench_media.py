"""Benchmark middle-frame decode + embed (videos/s), the paper's step 3.

Writes ``--n-videos`` synthetic WebVid-like H.264 clips (596x336, 25 fps, ``--seconds`` long,
keyframe every ``--gop`` frames) and measures:

1. ``decode``: the frame chosen by each ``--frames`` rule (``middle``: frame ``n // 2``;
   ``keyframe``: the keyframe nearest to it, ``media.frame``) with decord + shrink to the
   encoder's input size, in a pool of ``w`` threads (the stage's DecodeFrames work), for each
   ``--workers`` value and each ``--check-stream`` setting (``on``: the whole stream decoded
   with PyAV first, ``media.check_stream``; ``off``: decord alone);
2. ``embed``: the image encoder alone on prepared frames, for each ``--batch-sizes`` value;
3. ``overlap``: decode pool feeding encoder batches concurrently (what a worker can reach),
   per frame rule;
4. ``stage``: the real ``media_embed`` stage through ``run_stages`` (Beam DirectRunner, cold
   cache), with the best batch size, the most workers and the first frame rule;
5. ``frame_scores`` (``--score-frames N``, text-tower encoders): the extra work per target video
   of per-frame ``scores`` (covr_datagen.pipeline.stages.frame_scores): decode the N sampled frames + prepare
   in a pool of the most workers, then per video embed its N frames and one modification text.

Paper: ~135k videos in 3 h on one RTX A6000 = ~12.5 videos/s.

    .venv/bin/python scripts/bench_media.py --n-videos 48 --encoder open_clip:ViT-L-14: \
        --device cpu --batch-sizes 8,16 --workers 1,2 --out bench_media.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

PAPER_VIDEOS_PER_S = 135_000 / (3 * 3600)

CAPTIONS = ["a red car on a road", "a blue car on a road", "green trees in a quiet park",
            "waves on a sandy beach", "a city skyline at night", "a dog running in snow"]


def _write_one(args) -> str:
    from covr_datagen.pipeline.devtools.synthetic_media import clip_frames, write_mp4

    path, caption, seconds, fps, gop = args
    frames = clip_frames(caption, n_frames=int(seconds * fps), height=336, width=596)
    write_mp4(path, frames, fps=fps, codec="libx264", bit_rate=1_500_000, gop=gop)
    return path


def make_videos(folder: Path, n: int, seconds: float, fps: int, gop: int) -> list[str]:
    """Write ``n`` clips in parallel processes; return their paths."""
    jobs = [(str(folder / "p" / f"v{i}.mp4"), f"{CAPTIONS[i % len(CAPTIONS)]} {i}", seconds, fps,
             gop) for i in range(n)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(_write_one, jobs, chunksize=4))


def bench_decode(paths: list[str], prepare, workers: int, frame: str = "middle",
                 check_stream: bool = True) -> tuple[float, list[np.ndarray]]:
    """Videos/s of frame decode (rule ``frame``, stream check on or off) + prepare with
    ``workers`` threads."""
    from covr_datagen.pipeline.media.frames import read_video_frame

    def one(path):
        return prepare(read_video_frame(path, frame, check_stream)[0])

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        frames = list(pool.map(one, paths))
    return len(paths) / (time.perf_counter() - start), frames


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def bench_embed(encoder, frames: list[np.ndarray], batch: int, device: str,
                min_items: int = 512) -> float:
    """Images/s of the encoder on prepared frames at one batch size (after a warm-up batch)."""
    reps = max(1, -(-min_items // len(frames))) if device.startswith("cuda") else 1
    items = (frames * reps)
    encoder.encode(items[:batch])
    _sync(device)
    start = time.perf_counter()
    for i in range(0, len(items), batch):
        encoder.encode(items[i:i + batch])
    _sync(device)
    return len(items) / (time.perf_counter() - start)


def bench_overlap(paths: list[str], encoder, batch: int, workers: int, frame: str = "middle"
                  ) -> float:
    """Videos/s with decode threads and encoder batches running concurrently."""
    from covr_datagen.pipeline.media.frames import read_video_frame

    def one(path):
        return encoder.prepare(read_video_frame(path, frame)[0])

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        pending: list[np.ndarray] = []
        for prepared in pool.map(one, paths):  # not `frame`: the closure above reads that name
            pending.append(prepared)
            if len(pending) == batch:
                encoder.encode(pending)
                pending = []
        if pending:
            encoder.encode(pending)
    return len(paths) / (time.perf_counter() - start)


def bench_frame_scores(paths: list[str], encoder, n: int, workers: int) -> dict:
    """Seconds per video of per-frame scores: sampled-frame decode (threads) and the per-target
    encode of ``n`` frames plus one text, as ``ScoreTarget`` does."""
    from covr_datagen.pipeline.media.frames import read_sampled_frames

    def one(path):
        return [encoder.prepare(f) for f in read_sampled_frames(path, n)[0]]

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(one, paths))
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    for frames in decoded:
        vectors = encoder.encode(frames)
        _ = encoder.encode_text(["make the car blue"]) @ vectors.T
    embed_s = time.perf_counter() - start
    return {"frames": n, "workers": workers, "decode_s_per_video": round(decode_s / len(paths), 4),
            "embed_s_per_video": round(embed_s / len(paths), 4),
            "total_s_per_video": round((decode_s + embed_s) / len(paths), 4)}


def bench_stage(root: Path, paths: list[str], encoder: str, device: str, batch: int,
                workers: int, frame: str = "middle") -> dict:
    """The real media_embed stage (cold cache) over the clips; videos/s and its manifest entry."""
    from covr_datagen.pipeline.config import Config
    from covr_datagen.pipeline.core.rundir import RunDir
    from covr_datagen.pipeline.core.stage import RunFacts
    from covr_datagen.pipeline.run.stage_runner import run_stages
    from covr_datagen.pipeline.stages.media_embed import MediaEmbedStage
    from covr_datagen.schemas import CAPTION_PAIRS, RECORDS, conform

    def write_table(folder: Path, rows: list[dict], schema) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist([conform(r, schema) for r in rows], schema=schema),
                       folder / "part-0.parquet")

    run = RunDir(root / "run")
    ids = [f"p/{Path(p).stem}" for p in paths]
    records = [{"row": i, "media_id": m, "caption": f"c{i}", "normalized": f"c{i}",
                "caption_id": f"c{i}", "page_dir": "p", "videoid": m.split("/")[1]}
               for i, m in enumerate(ids)]
    half = len(ids) // 2
    pairs = [{"pair_id": "P", "caption_id1": "a", "caption_id2": "b", "txt1": "a", "txt2": "b",
              "word1": "a", "word2": "b", "position": 0, "media_ids1": ids[:half],
              "media_ids2": ids[half:]}]
    write_table(run.table("records"), records, RECORDS)
    write_table(run.table("caption_pairs"), pairs, CAPTION_PAIRS)
    config = Config()
    config.media.media_root = str(root / "videos")
    config.media.cache_dir = str(root / "cache")
    config.media.encoder, config.media.device = encoder, device
    config.media.batch_size, config.media.decode_workers = batch, workers
    config.media.max_media_per_caption = len(ids)
    config.media.frame = frame
    start = time.perf_counter()
    (report,) = run_stages([MediaEmbedStage()], run, config, RunFacts("bench"))
    seconds = time.perf_counter() - start
    return {"videos_per_s": report.kept / seconds, "seconds": round(seconds, 2),
            "kept": report.kept, "dropped": report.dropped, "batch": batch, "workers": workers,
            "frame": frame}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-videos", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=int, default=50, help="keyframe interval (frames)")
    parser.add_argument("--encoder", default="open_clip:ViT-L-14:",
                        help="media.encoder spec (empty pretrained = random weights)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--workers", default="1,2,4,8,16")
    parser.add_argument("--frames", default="middle",
                        help="media.frame rules to time, comma-separated (middle,keyframe)")
    parser.add_argument("--check-stream", default="on",
                        help="decode step: media.check_stream settings to time, comma-separated "
                        "(on,off)")
    parser.add_argument("--no-stage", action="store_true", help="skip the Beam stage run")
    parser.add_argument("--score-frames", type=int, default=0,
                        help="also time per-frame scores with this many frames (0 = skip)")
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args()

    import torch

    from covr_datagen.pipeline.media.encoders import MediaEncoderSpec
    from covr_datagen.pipeline.media.frames import check_frame_rule

    batches = [int(b) for b in args.batch_sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    rules = [check_frame_rule(f) for f in args.frames.split(",")]
    root = Path(tempfile.mkdtemp(prefix="bench_media_"))
    result: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                "gpu": torch.cuda.get_device_name(0)
                                if torch.cuda.is_available() else None,
                                "torch": torch.__version__},
                    "args": vars(args), "paper_videos_per_s": round(PAPER_VIDEOS_PER_S, 2)}
    try:
        t = time.perf_counter()
        paths = make_videos(root / "videos", args.n_videos, args.seconds, args.fps, args.gop)
        result["clip_bytes_mean"] = int(np.mean([os.path.getsize(p) for p in paths]))
        print(f"wrote {len(paths)} clips in {time.perf_counter() - t:.1f}s", flush=True)

        t = time.perf_counter()
        encoder = MediaEncoderSpec.parse(args.encoder, args.device).load()
        result["model_load_s"] = round(time.perf_counter() - t, 2)
        checks = args.check_stream.split(",")
        if not set(checks) <= {"on", "off"}:
            parser.error("--check-stream takes on and/or off")
        result["decode"] = {f"{rule}/check_stream={c}": {} for rule in rules for c in checks}
        frames: list[np.ndarray] = []
        for rule in rules:
            for check in checks:
                for w in workers:
                    vps, frames = bench_decode(paths, encoder.prepare, w, rule, check == "on")
                    result["decode"][f"{rule}/check_stream={check}"][w] = round(vps, 1)
                    print(f"decode frame={rule} check_stream={check} workers={w}: "
                          f"{vps:.1f} videos/s", flush=True)
        result["embed"] = {}
        for b in batches:
            ips = bench_embed(encoder, frames, b, args.device)
            result["embed"][b] = round(ips, 1)
            print(f"embed batch={b}: {ips:.1f} images/s", flush=True)
        best_batch = max(result["embed"], key=result["embed"].get)
        result["overlap"] = {}
        for rule in rules:
            vps = bench_overlap(paths, encoder, best_batch, max(workers), rule)
            result["overlap"][rule] = {"batch": best_batch, "workers": max(workers),
                                       "videos_per_s": round(vps, 1)}
            print(f"decode+embed overlapped (frame {rule}, batch {best_batch}, {max(workers)} "
                  f"workers): {vps:.1f} videos/s", flush=True)
        if args.score_frames:
            scores = bench_frame_scores(paths, encoder, args.score_frames, max(workers))
            middle = result["overlap"][rules[0]]["videos_per_s"]
            scores["middle_frame_s_per_video"] = round(1 / middle, 4)
            result["frame_scores"] = scores
            print(f"frame scores: {scores}", flush=True)
        if not args.no_stage:
            del encoder
            stage = bench_stage(root, paths, args.encoder, args.device, best_batch, max(workers),
                                rules[0])
            result["stage"] = stage
            print(f"media_embed stage: {stage['videos_per_s']:.1f} videos/s ({stage})", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
