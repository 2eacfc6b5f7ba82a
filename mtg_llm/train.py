"""LoRA fine-tuning of a causal LM into the MTG-LLM (plain torch loop over a peft model).

The defaults of :class:`TrainArgs` were chosen by measurement on SmolLM2-135M and the shipped
data (docs/MTG.md). The paper's numbers (CoVR-2, Sec. 3.1: 1 epoch, lr 3e-5, batch 128, 100
linear warm-up steps then constant) are :func:`paper_args`; on ~700 examples they make 6
optimizer steps, all inside the warm-up, which leaves a LoRA adapter nearly untrained.

A validation split (a stable hash of each example, so growing the data does not move old
examples between splits) is held out; its response-token loss is measured before training and
after every epoch. The loss covers only the response tokens (the edit and the end-of-sequence
token); prompt and padding tokens are masked with -100. bf16 on GPU, fp32 on CPU. Writes the
adapter, the tokenizer (unless the base is a built-in model, whose tokenizer is always at hand),
``report.json``, ``loss_curve.png`` and the examples used with their split
(``training_examples.parquet``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from covr_datagen.mtg_llm.data import MtgExample, load_training_set
from covr_datagen.mtg_llm.models import BUILTIN_MODELS, resolve_base_model
from covr_datagen.mtg_llm.prompt import format_example

IGNORE = -100
#: attention projections LoRA adapts when the model has them (LLaMA family)
LLAMA_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class TrainArgs:
    """Everything ``mtg train`` takes; defaults chosen by measurement (docs/MTG.md)."""

    base_model: str
    out: str
    data: list[str] = field(default_factory=list)
    include_builtin: bool = True
    epochs: float = 3.0
    lr: float = 1e-3
    batch_size: int = 8  # micro-batch
    grad_accum: int = 1  # effective batch = batch_size x grad_accum
    warmup_steps: int = 10
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    seed: int = 0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] | None = None  # default: LLAMA_ATTENTION when the model has them
    max_length: int = 256
    val_fraction: float = 0.1  # share of examples held out for the validation loss
    device: str = "auto"
    model_cache: str | None = None  # where built-in base models are converted (models.py)


#: the CoVR-2 paper's fine-tuning numbers (``mtg train --paper-defaults``)
PAPER_DEFAULTS = {"epochs": 1.0, "lr": 3e-5, "batch_size": 16, "grad_accum": 8, "warmup_steps": 100,
                  "lora_r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]}


def paper_args(base_model: str, out: str, **overrides) -> TrainArgs:
    """:class:`TrainArgs` with the paper's numbers (then ``overrides``)."""
    return dataclasses.replace(TrainArgs(base_model=base_model, out=out), **PAPER_DEFAULTS,
                               **overrides)


def is_validation(ex: MtgExample, fraction: float) -> bool:
    """Whether ``ex`` is held out: a stable hash of its captions and edit, so the split of an
    example never depends on what else is in the data or on the seed."""
    if fraction <= 0:
        return False
    digest = hashlib.blake2b("\x1f".join(ex.key()).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64 < fraction


def split_examples(examples: Sequence[MtgExample], fraction: float
                   ) -> tuple[list[MtgExample], list[MtgExample]]:
    """``(train, validation)`` by :func:`is_validation`."""
    train_set = [e for e in examples if not is_validation(e, fraction)]
    val_set = [e for e in examples if is_validation(e, fraction)]
    return train_set, val_set


def lora_config(args: TrainArgs, model=None):
    """The peft ``LoraConfig`` used for training (also used by the benchmark)."""
    from peft import LoraConfig

    targets = args.target_modules
    if targets is None and model is not None:
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = LLAMA_ATTENTION if set(LLAMA_ATTENTION) <= names else None
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


def plot_losses(losses: list[float], val_losses: list[dict], path: Path) -> None:
    """Loss curve PNG: training loss per step, validation loss where measured (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, marker="o" if len(losses) < 50 else None,
            label="training")
    if val_losses:
        ax.plot([v["step"] for v in val_losses], [v["loss"] for v in val_losses], marker="s",
                label="validation")
        ax.legend()
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("response-token loss")
    ax.set_title("MTG-LLM LoRA fine-tuning")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_examples(train_set: Sequence[MtgExample], val_set: Sequence[MtgExample],
                   path: Path) -> None:
    """The examples used, with their split, as Parquet (``schemas.MTG_EXAMPLES``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from covr_datagen.schemas import MTG_EXAMPLES

    rows = ([e.to_row() | {"split": "train"} for e in train_set]
            + [e.to_row() | {"split": "validation"} for e in val_set])
    pq.write_table(pa.Table.from_pylist(rows, schema=MTG_EXAMPLES), path)


def read_validation_examples(adapter: str | Path) -> list[MtgExample]:
    """The examples an adapter's training held out (from its ``training_examples.parquet``)."""
    import pyarrow.parquet as pq

    rows = pq.read_table(Path(adapter) / "training_examples.parquet").to_pylist()
    return [MtgExample(r["caption1"], r["caption2"], r["edit"], r["source"])
            for r in rows if r["split"] == "validation"]


def mean_loss(model, encoded: Sequence[dict], pad_id: int, device: str, batch_size: int) -> float:
    """Response-token loss over ``encoded`` (eval mode, no gradients), weighted by tokens."""
    import torch

    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(encoded), batch_size):
            batch = collate(encoded[i:i + batch_size], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            # labels are shifted by one inside the model: count the predicted positions
            n = int((batch["labels"][:, 1:] != IGNORE).sum())
            total += float(model(**batch).loss) * n
            tokens += n
    model.train(was_training)
    return total / max(tokens, 1)


def train(args: TrainArgs) -> dict:
    """Fine-tune, save adapter + tokenizer + report into ``args.out``; return the report."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from covr_datagen.mtg_llm.engines.hf import load_tokenizer, resolve_device

    if args.batch_size < 1 or args.grad_accum < 1:
        raise ValueError("batch size and gradient accumulation must be >= 1")
    if not 0 <= args.val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {args.val_fraction}")
    out = Path(args.out)
    examples, data_stats = load_training_set(args.data, include_builtin=args.include_builtin)
    train_set, val_set = split_examples(examples, args.val_fraction)
    if not train_set:
        raise ValueError("no training examples left after holding out the validation split")
    model_path = resolve_base_model(args.base_model, args.model_cache)
    out.mkdir(parents=True, exist_ok=True)

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = load_tokenizer(model_path)
    tokenizer.padding_side = "right"
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer of {args.base_model} has no eos token")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device)
    model = get_peft_model(model, lora_config(args, model))
    trainable, total = model.get_nb_trainable_parameters()

    encoded = [encode_example(tokenizer, ex, args.max_length) for ex in train_set]
    val_encoded = [encode_example(tokenizer, ex, args.max_length) for ex in val_set]
    effective = args.batch_size * args.grad_accum
    steps_per_epoch = math.ceil(len(encoded) / effective)
    total_steps = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_constant(args.warmup_steps))

    def validate(step: int) -> None:
        if val_encoded:
            val_losses.append({"step": step, "loss": round(mean_loss(
                model, val_encoded, tokenizer.pad_token_id, device, args.batch_size), 5)})
        recent = losses[-steps_per_epoch:]
        print(f"mtg train: step {step}/{total_steps}"
              + (f", training loss {sum(recent) / len(recent):.4f}" if recent else "")
              + (f", validation loss {val_losses[-1]['loss']:.4f}" if val_encoded else "")
              + f" ({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)

    rng = random.Random(args.seed)
    order: list[int] = []
    losses: list[float] = []
    val_losses: list[dict] = []
    start = time.monotonic()
    validate(0)
    model.train()
    for step in range(1, total_steps + 1):
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
                raise RuntimeError(f"non-finite loss at step {step}: {loss.item()}")
            (loss / args.grad_accum).backward()
            micro_losses.append(loss.item())
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(sum(micro_losses) / len(micro_losses))
        if step % steps_per_epoch == 0 or step == total_steps:
            validate(step)
    seconds = time.monotonic() - start

    # record the name the user gave (e.g. a built-in name), not the resolved cache folder
    model.peft_config["default"].base_model_name_or_path = args.base_model
    model.save_pretrained(out)
    # peft writes a blank model card naming the local cache folder; report.json describes the run
    (out / "README.md").unlink(missing_ok=True)
    write_examples(train_set, val_set, out / "training_examples.parquet")
    tokenizer.padding_side = "left"
    if args.base_model not in BUILTIN_MODELS:
        tokenizer.save_pretrained(out)
    plot_losses(losses, val_losses, out / "loss_curve.png")
    report = {
        "base_model": args.base_model, "device": device, "dtype": str(dtype).replace("torch.", ""),
        "data": data_stats | {"train": len(train_set), "validation": len(val_set)},
        "steps": total_steps, "steps_per_epoch": steps_per_epoch,
        "examples_seen": total_steps * effective, "effective_batch": effective,
        "trainable_params": trainable, "total_params": total, "losses": losses,
        "val_losses": val_losses, "val_loss": val_losses[-1]["loss"] if val_losses else None,
        "seconds": round(seconds, 3), "args": asdict(args),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
