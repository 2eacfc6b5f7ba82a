"""Tiny random LLaMA built locally -> ``mtg train`` (a few steps) -> ``hf`` engine generation."""

import json

import pyarrow.parquet as pq
import pytest

from covr_datagen.mtg_llm.concepts import new_words
from covr_datagen.mtg_llm.data import MtgExample
from covr_datagen.mtg_llm.engines.hf import HFEngine
from covr_datagen.mtg_llm.train import IGNORE, TrainArgs, encode_example, train
from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.devtools.tiny_llm import make_tiny_llm

PAIRS = [("Dog running on the beach", "Horse running on the beach"),
         ("Red car parked on the street", "Blue car parked on the street"),
         ("Forest in summer", "Forest in winter"),
         ("Woman walking in the park", "Woman running in the park")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_llm(tmp_path_factory.mktemp("tiny_llm")))


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("mtg")
    extra = root / "extra.jsonl"
    extra.write_text(json.dumps({"input": "a kite in the sky", "edit": "add more kites",
                                 "output": "kites in the sky"}) + "\n")
    out = root / "adapter"
    rc = cli_main(["mtg", "train", "--data", str(extra), "--base-model", tiny, "--out", str(out),
                   "--max-steps", "3", "--batch-size", "4", "--grad-accum", "2", "--lr", "1e-3",
                   "--warmup-steps", "2", "--seed", "0", "--device", "cpu"])
    assert rc == 0
    return out


def test_train_writes_adapter_tokenizer_and_report(trained):
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                 "report.json", "loss_curve.png", "training_examples.parquet"):
        assert (trained / name).is_file(), name
    assert (trained / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((trained / "report.json").read_text())
    assert report["steps"] == 3 and len(report["losses"]) == 3
    assert report["effective_batch"] == 8 and report["dtype"] == "float32"
    data = report["data"]
    assert data["examples"] == data["loaded"] - data["duplicates"] >= 101
    assert data["examples"] == data["train"] + data["validation"]
    assert all(0 < loss < 20 for loss in report["losses"])
    used = pq.read_table(trained / "training_examples.parquet")
    assert used.num_rows == report["data"]["examples"]
    assert "kites in the sky" in used.column("caption2").to_pylist()
    adapter_cfg = json.loads((trained / "adapter_config.json").read_text())
    assert set(adapter_cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_loss_covers_only_the_response(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    enc = encode_example(tok, MtgExample("Black bird", "black bear", "Turn it into a bear", "t"),
                         max_length=256)
    labels = enc["labels"]
    n_prompt = labels.index(next(x for x in labels if x != IGNORE))
    assert all(x == IGNORE for x in labels[:n_prompt])
    assert tok.decode(enc["input_ids"][:n_prompt]).endswith("### Response:")
    assert labels[n_prompt:] == enc["input_ids"][n_prompt:]
    assert tok.decode(labels[n_prompt:]) == " Turn it into a bear</s>"


def test_training_lowers_the_response_loss(tiny, tmp_path):
    report = train(TrainArgs(base_model=tiny, out=str(tmp_path), batch_size=8, grad_accum=1,
                             max_steps=12, lr=2e-2, warmup_steps=1, device="cpu"))
    losses = report["losses"]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1, losses


def test_hf_engine_with_adapter_generates_parseable_reproducible_texts(tiny, trained):
    def run(seed):
        eng = HFEngine(tiny, str(trained), seed=seed, max_new_tokens=10, device="cpu")
        eng.setup()
        return eng, eng.generate(PAIRS)

    eng, first = run(11)
    _, again = run(11)
    _, other = run(12)
    assert len(first) == len(PAIRS)
    assert all(isinstance(t, str) and "\n" not in t and t == t.strip() for t in first)
    assert first == again
    assert first != other
    ident = eng.identity()
    assert ident["engine"] == "hf" and ident["seed"] == 11
    assert ident["model"].startswith(f"{tiny}+{trained}@")


def test_hf_engine_text_of_a_pair_does_not_depend_on_its_batch(tiny):
    eng = HFEngine(tiny, seed=3, max_new_tokens=10, device="cpu")
    alone = [eng.generate([pair])[0] for pair in PAIRS]
    assert eng.generate(PAIRS) == alone
    assert eng.generate(PAIRS[::-1]) == alone[::-1]
    assert eng.generate(PAIRS[1:3]) == alone[1:3]
    assert eng.generate(PAIRS, attempt=1) != alone  # another draw, other texts


def test_write_samples_again_until_the_text_names_the_new_concept(tiny):
    eng = HFEngine(tiny, seed=3, max_new_tokens=10, device="cpu")
    draws = []

    def scripted(pairs, attempt=0):  # the new word appears only in the third draw
        draws.append((len(pairs), attempt))
        return [f"{new_words(p.txt1, p.txt2)[0]} now" if attempt == 2 or i == 0
                else "something else" for i, p in enumerate(pairs)]

    eng.generate = scripted
    written = eng.write(PAIRS, attempts=4)
    assert written.texts == ["horse now", "blue now", "winter now", "running now"]
    assert draws == [(4, 0), (3, 1), (2, 2)]  # the first of each batch names it
    assert (written.resampled, written.missing_concept) == (3, 0)
    draws.clear()
    once = eng.write(PAIRS, attempts=1)
    assert once.texts[1:] == ["something else"] * 3 and draws == [(4, 0)]
    assert (once.resampled, once.missing_concept) == (0, 3)  # one draw: nothing sampled again


def test_train_rejects_bad_data(tiny, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"caption1": "a"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        train(TrainArgs(base_model=tiny, out=str(tmp_path / "o"), data=[str(bad)], max_steps=1))


@pytest.mark.parametrize("stop", [True, False])
def test_generation_stops_at_the_first_line_break(tiny, stop):
    eng = HFEngine(tiny, seed=1, max_new_tokens=10, device="cpu", stop_at_newline=stop)
    eng.setup()
    newline = eng.tokenizer.convert_tokens_to_ids("Ċ")  # byte-level BPE's "\n"
    original = eng.model.generate

    def forced(**kwargs):  # make "\n" the overwhelming choice at every step
        return original(**kwargs, sequence_bias={(newline,): 50.0})

    eng.model.generate = forced
    texts = eng.generate(PAIRS)
    assert texts == [""] * len(PAIRS)  # the text before the line break is empty
    per_row = eng.last_new_tokens / len(PAIRS)
    assert per_row == (1 if stop else 10)


def test_make_tiny_llm_script(tmp_path):
    import importlib.util
    from pathlib import Path

    from transformers import AutoConfig, AutoTokenizer

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_tiny_llm.py"
    spec = importlib.util.spec_from_file_location("make_tiny_llm", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([str(tmp_path / "m"), "--vocab-size", "400", "--layers", "1"]) == 0
    cfg = AutoConfig.from_pretrained(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert cfg.model_type == "llama" and cfg.num_hidden_layers == 1
    assert cfg.vocab_size == len(tok) <= 400
    ids = tok("Forest in summer\n&&\nForest in winter")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.decode(ids[1:]) == "Forest in summer\n&&\nForest in winter"
