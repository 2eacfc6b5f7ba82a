"""LoRA fine-tuning of a causal LM into the MTG-LLM (plain torch loop over a peft model).

Paper defaults (CoVR-2, Sec. 3.1): 1 epoch, lr 3e-5, batch 128 (here: micro-batch x gradient
accumulation), 100 linear warm-up steps then a constant rate. The loss covers only the response
tokens (the edit and the end-of-sequence token); prompt and padding tokens are masked with -100.
bf16 on GPU, fp32 on CPU. Writes the adapter, the tokenizer, ``report.json``, ``loss_curve.png``
and the training set actually used (``training_examples.parquet``).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from mtg_llm.data import MtgExample, load_training_set
from mtg_llm.prompt import format_example

IGNORE = -100


@dataclass
class TrainArgs:
    """Everything ``mtg train`` takes; defaults are the paper's."""

    base_model: str
    out: str
    data: list[str] = field(default_factory=list)
    include_seed: bool = True
    epochs: float = 1.0
    lr: float = 3e-5
    batch_size: int = 16  # micro-batch
    grad_accum: int = 8  # 16 x 8 = 128, the paper's batch
    warmup_steps: int = 100
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    seed: int = 0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] | None = None  # default: q_proj/v_proj when the model has them
    max_length: int = 256
    device: str = "auto"


def lora_config(args: TrainArgs, model=None):
    """The peft ``LoraConfig`` used for training (also used by the benchmark)."""
    from peft import LoraConfig

    targets = args.target_modules
    if targets is None and model is not None:
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = ["q_proj", "v_proj"] if {"q_proj", "v_proj"} <= names else None
    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def encode_example(tokenizer, ex: MtgExample, max_length: int) -> dict[str, list[int]]:
    """Token ids and labels of one example; labels are -100 except on the response + eos.

    Prompt and response are tokenized separately and concatenated, so the prompt's tokens are
    exactly those seen at inference. Raises ``ValueError`` when no response token fits.
    """
    prompt, response = format_example(ex.caption1, ex.caption2, ex.edit)
    p_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    r_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (p_ids + r_ids)[:max_length]
    labels = ([IGNORE] * len(p_ids) + r_ids)[:max_length]
    if all(label == IGNORE for label in labels):
        raise ValueError(f"prompt longer than max_length={max_length}: {prompt!r}")
    return {"input_ids": ids, "labels": labels}


def collate(batch: Sequence[dict[str, list[int]]], pad_id: int):
    """Right-pad a micro-batch into tensors (padding masked in attention and labels)."""
    import torch

    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[i, :n] = torch.tensor(b["input_ids"])
        labels[i, :n] = torch.tensor(b["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def warmup_constant(warmup_steps: int):
    """LR multiplier: linear warm-up over ``warmup_steps`` optimizer steps, then 1."""
    return lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def plot_losses(losses: list[float], path: Path) -> None:
    """Loss curve PNG (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, marker="o" if len(losses) < 50 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("response-token loss")
    ax.set_title("MTG-LLM LoRA fine-tuning")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_examples(examples: Sequence[MtgExample], path: Path) -> None:
    """The merged, de-duplicated training set as Parquet (``schemas.MTG_EXAMPLES``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas import MTG_EXAMPLES

    pq.write_table(pa.Table.from_pylist([e.to_row() for e in examples], schema=MTG_EXAMPLES), path)


def train(args: TrainArgs) -> dict:
    """Fine-tune, save adapter + tokenizer + report into ``args.out``; return the report."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from mtg_llm.engines.hf import load_tokenizer, resolve_device

    if args.batch_size < 1 or args.grad_accum < 1:
        raise ValueError("batch size and gradient accumulation must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    examples, data_stats = load_training_set(args.data, include_seed=args.include_seed)

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = load_tokenizer(args.base_model)
    tokenizer.padding_side = "right"
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer of {args.base_model} has no eos token")
    model = AutoModelForCausalLM.from_pretrained(args.base_model, dtype=dtype).to(device)
    model = get_peft_model(model, lora_config(args, model))
    trainable, total = model.get_nb_trainable_parameters()

    encoded = [encode_example(tokenizer, ex, args.max_length) for ex in examples]
    effective = args.batch_size * args.grad_accum
    steps_per_epoch = math.ceil(len(encoded) / effective)
    total_steps = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_constant(args.warmup_steps))

    rng = random.Random(args.seed)
    order: list[int] = []
    losses: list[float] = []
    model.train()
    start = time.monotonic()
    for _ in range(total_steps):
        micro_losses = []
        for _ in range(args.grad_accum):
            if len(order) < args.batch_size:  # next epoch: reshuffle, carry the remainder
                fresh = list(range(len(encoded)))
                rng.shuffle(fresh)
                order.extend(fresh)
            idx, order = order[:args.batch_size], order[args.batch_size:]
            batch = collate([encoded[i] for i in idx], tokenizer.pad_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss at step {len(losses) + 1}: {loss.item()}")
            (loss / args.grad_accum).backward()
            micro_losses.append(loss.item())
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(sum(micro_losses) / len(micro_losses))
    seconds = time.monotonic() - start

    model.save_pretrained(out)
    write_examples(examples, out / "training_examples.parquet")
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(out)
    plot_losses(losses, out / "loss_curve.png")
    report = {
        "base_model": args.base_model, "device": device, "dtype": str(dtype).replace("torch.", ""),
        "data": data_stats, "steps": total_steps, "steps_per_epoch": steps_per_epoch,
        "examples_seen": total_steps * effective, "effective_batch": effective,
        "trainable_params": trainable, "total_params": total, "losses": losses,
        "seconds": round(seconds, 3), "args": asdict(args),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
