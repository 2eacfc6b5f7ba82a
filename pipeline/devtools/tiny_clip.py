"""A tiny random-weight open-clip model built locally (no download), for tests and demos of the
``open_clip`` encoder path: a model-config JSON plus a state-dict checkpoint in one folder. The
text tower keeps CLIP's vocabulary size so that CLIP's tokenizer works with it (frame scores)."""

from __future__ import annotations

import json
from pathlib import Path

TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def build_tiny_open_clip(folder: str | Path, seed: int = 0, name: str = "tiny-clip") -> str:
    """Write ``<folder>/<name>.json`` and ``<folder>/<name>.pt``; return the encoder spec
    ``open_clip:<config path>:<checkpoint path>`` to put in ``media.encoder``."""
    import open_clip
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_path, checkpoint = folder / f"{name}.json", folder / f"{name}.pt"
    config_path.write_text(json.dumps(TINY_CONFIG, indent=2), encoding="utf-8")
    open_clip.add_model_config(str(config_path))
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    torch.save(model.state_dict(), checkpoint)
    return f"open_clip:{config_path}:{checkpoint}"
