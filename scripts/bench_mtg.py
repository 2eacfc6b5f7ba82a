"""MTG-LLM throughput on one GPU: LoRA training step time and ``hf`` engine generation.

A LLaMA-7B-shaped model with random weights is built directly on the GPU in bf16 (random weights
are fine for throughput). Generation uses the project's ``HFEngine`` with the paper's sampling
(top-k 200, temperature 0.8) and a fixed number of new tokens, so every batch does the same work.

    python scripts/bench_mtg.py --out bench.json                 # GPU, 7B shape
    python scripts/bench_mtg.py --shape tiny --batch-sizes 8 16  # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

SHAPES = {  # LLaMA-7B: 32 layers, 4096 hidden, 11008 MLP, 32 heads, 32k vocab
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, vocab_size=32000),
}
PAPER_HOURS = 24.0  # CoVR-2: generation for 1.6M caption pairs on one RTX A6000
PAIRS_TOTAL = 1_600_000


def build_model(shape: str, device: str):
    """Random ``LlamaForCausalLM`` of ``shape`` created on ``device`` (bf16 on GPU)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=2048, bos_token_id=1,
                         eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(prev)
    return model


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def bench_lora(model, device: str, batch: int, seq: int, steps: int) -> dict:
    """Mean time of a LoRA step (forward + backward + AdamW) at ``batch x seq`` tokens."""
    import torch
    from peft import get_peft_model

    from covr_datagen.mtg_llm.train import TrainArgs, lora_config

    peft_model = get_peft_model(model, lora_config(TrainArgs(base_model="", out=""), model))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-5)
    ids = torch.randint(3, 32000, (batch, seq), device=device)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        sync(device)
        t = time.perf_counter()
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t)
    step = statistics.mean(times)
    base = peft_model.unload()  # the untouched base model, for generation
    del opt, params, peft_model
    mem = 0.0
    if device == "cuda":
        mem = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.empty_cache()
    return {"batch": batch, "seq": seq, "step_s": round(step, 4), "steps_timed": steps,
            "tokens_per_s": round(batch * seq / step), "peak_mem_gib": round(mem, 1),
            "epoch_715_examples_s": round(step * 715 / batch, 2)}, base


def bench_generate(model, tokenizer, pairs, batch_sizes, new_tokens: int, repeats: int,
                   cache: str = "dynamic", partial: Path | None = None) -> list:
    """Pairs/s and new tokens/s of ``HFEngine.generate`` at each batch size."""
    from covr_datagen.mtg_llm.engines.hf import HFEngine

    engine = HFEngine("random-7b-shape", top_k=200, temperature=0.8, max_new_tokens=new_tokens,
                      min_new_tokens=new_tokens, seed=0,
                      cache_implementation=None if cache == "dynamic" else cache,
                      stop_at_newline=False)
    engine.use_model(model, tokenizer)
    rows = []
    for bs in batch_sizes:
        batch = [pairs[i % len(pairs)] for i in range(bs)]
        prompt_tokens = [len(x) for x in tokenizer(
            [f"{a}\n&&\n{b}\n\n### Response:" for a, b in batch])["input_ids"]]
        try:
            t = time.perf_counter()
            engine.generate(batch)  # warm-up (and compilation, for the static cache)
            warmup_s = time.perf_counter() - t
            times, toks = [], 0
            for _ in range(repeats):
                t = time.perf_counter()
                engine.generate(batch)
                times.append(time.perf_counter() - t)
                toks += bs * new_tokens
        except Exception as exc:  # e.g. out of memory at the largest batch: report, go on
            rows.append({"cache": cache, "batch": bs,
                         "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
            continue
        sec = sum(times)
        pps = bs * repeats / sec
        rows.append({"cache": cache, "batch": bs, "pairs_per_s": round(pps, 1),
                     "new_tokens_per_s": round(toks / sec),
                     "prompt_tokens_mean": round(statistics.mean(prompt_tokens), 1),
                     "new_tokens": new_tokens, "seconds_per_batch": round(sec / repeats, 3),
                     "projected_hours_1_6M": round(PAIRS_TOTAL / pps / 3600, 2),
                     "warmup_s": round(warmup_s, 1)})
        print(json.dumps(rows[-1]), flush=True)
        if partial:
            partial.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    import torch

    from covr_datagen.mtg_llm.data import load_builtin_examples
    from covr_datagen.pipeline.devtools.tiny_llm import tokenizer_corpus, train_tokenizer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 512, 1024])
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", nargs="+", default=["dynamic"],
                    help="KV cache implementations to compare: dynamic, static")
    ap.add_argument("--lora-batch", type=int, default=16)
    ap.add_argument("--lora-seq", type=int, default=64)
    ap.add_argument("--lora-steps", type=int, default=10)
    ap.add_argument("--tokenizer-vocab", type=int, default=400,
                    help="BPE vocab of the locally trained tokenizer (sets prompt length)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = train_tokenizer(tokenizer_corpus(), vocab_size=args.tokenizer_vocab)
    pairs = [(e.caption1, e.caption2) for e in load_builtin_examples()]
    t = time.perf_counter()
    model = build_model(args.shape, device)
    build_s = time.perf_counter() - t
    params = sum(p.numel() for p in model.parameters())
    print(f"built {args.shape} ({params / 1e9:.2f}B params) on {device} in {build_s:.1f}s", flush=True)
    lora, model = bench_lora(model, device, args.lora_batch, args.lora_seq, args.lora_steps)
    print(json.dumps({"lora": lora}), flush=True)
    partial = Path(args.out).with_suffix(".partial.json") if args.out else None
    gen = []
    for cache in args.cache:
        gen += bench_generate(model, tokenizer, pairs, args.batch_sizes, args.new_tokens,
                              args.repeats, cache, partial)
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "shape": args.shape, "params": params,
        "dtype": "bf16" if device == "cuda" else "fp32", "lora": lora, "generate": gen,
        "paper_hours_1_6M": PAPER_HOURS, "command": " ".join(["scripts/bench_mtg.py", *sys.argv[1:]]),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
