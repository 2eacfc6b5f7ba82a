"""Dense modification texts (issue 19 items 2-3): the prompt and its parser, every engine's dense
path, the triplets stage in dense mode, and demo-sized dense builds end to end through a stand-in
OpenAI-compatible server (real HTTP) and through the ``hf`` engine."""

import hashlib
import json

import pytest

from covr_datagen.mtg_llm.dense_prompt import (
    ANSWER_MARKER,
    SYSTEM,
    chat_messages,
    completion_prompt,
    parse_dense,
    user_message,
)
from covr_datagen.mtg_llm.engines import make_engine
from covr_datagen.mtg_llm.engines.rules import dense_baseline
from covr_datagen.mtg_llm.engines.vllm import VLLMEngine, chat_url
from covr_datagen.mtg_llm.pairs import DensePair
from covr_datagen.mtg_llm.prompt import edit_chat_messages
from covr_datagen.pipeline.config import Config, MtgConfig
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts
from covr_datagen.pipeline.run.stage_runner import run_stages
from covr_datagen.pipeline.stages.triplets import TripletStage
from covr_datagen.schemas import MEDIA_PAIRS
from tests.helpers import StandInOpenAI, write_table

PAIR = DensePair("Dog running on the\nbeach", "Horse running on the beach",
                 "A brown dog runs along a sandy beach at sunset.", None)
KEY = "sk-dense-test-9c1e55"


# --- prompt and parser ----------------------------------------------------------------------------
def test_the_prompt_holds_both_captions_and_the_descriptions_it_has():
    assert user_message(PAIR) == ("Query caption: Dog running on the beach\n"
                                  "Query description: A brown dog runs along a sandy beach at sunset.\n"
                                  "Target caption: Horse running on the beach")
    assert "description" not in user_message(DensePair("A b", "A c"))
    assert chat_messages(PAIR) == [{"role": "system", "content": SYSTEM},
                                   {"role": "user", "content": user_message(PAIR)}]
    prompt = completion_prompt(PAIR)
    assert prompt.startswith(SYSTEM) and prompt.endswith(user_message(PAIR) + ANSWER_MARKER)


@pytest.mark.parametrize("answer,text", [
    (" Replace the dog with a horse,\nkeep the beach.\n\nQuery caption: x",
     "Replace the dog with a horse, keep the beach."),
    ("Modification: \"Make the dog a horse.\"", "Make the dog a horse."),
    ("  answer:  swap   the dog<|im_end|>junk", "swap the dog"),
    ("\n\n", ""),
    ("### Response: nothing", ""),
])
def test_parse_dense_keeps_one_line(answer, text):
    assert parse_dense(answer) == text


# --- engines --------------------------------------------------------------------------------------
def test_rules_dense_baseline():
    eng = make_engine(MtgConfig(engine="rules", mode="dense"))
    assert eng.generate_dense([PAIR, DensePair("Red car", "Blue car", None, "A blue car.")]) == [
        "Turn Dog running on the beach into Horse running on the beach.",
        "Turn Red car into Blue car so that it shows: A blue car."]
    assert dense_baseline(DensePair("a b", "a c")) == "Turn a b into a c."


def test_vllm_dense_arguments_and_endpoint_urls():
    eng = make_engine(MtgConfig(engine="vllm", base_model="base", adapter=None, mode="dense",
                                seed=7, dense_max_new_tokens=80))
    assert eng.dense_sampling_kwargs() == {"n": 1, "top_k": 200, "temperature": 0.8,
                                           "max_tokens": 80, "stop": ["\n\n", "###"], "seed": 7}
    assert chat_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_url("http://h:8000/v1/chat/completions?v=2") == "http://h:8000/v1/chat/completions?v=2"
    with pytest.raises(ValueError, match="needs mtg.base_model"):
        make_engine(MtgConfig(engine="vllm", base_model=None, endpoint="http://h", mode="dense"))


def _target(message: str) -> str:
    """The target's description in a dense prompt's user message, else its caption."""
    fields = dict(line.split(": ", 1) for line in message.split("\n") if ": " in line)
    return fields.get("Target description") or fields["Target caption"]


def _scripted(text: str) -> str:
    """The stand-in server's answers: a dense text that names a hash of the user message and
    restates the target (so that the real dense filters keep it; empty for targets on a sofa),
    or a one-word edit naming the target caption."""
    if "Query caption:" in text:
        message = text.split("\n\n")[-2] if text.endswith(ANSWER_MARKER) else text
        if "sofa" in message.split("Target caption:")[1]:
            return "  \n"
        return (f" Modification: dense {_digest(message)}: change the query so that it shows "
                f"{_target(message)}\nsecond line\n\nignored")
    return f" Make it {text.split(chr(10))[2]}\nrest"


def _digest(message: str) -> str:
    return hashlib.blake2b(message.encode(), digest_size=5).hexdigest()


def expected_dense(pair: DensePair) -> str:
    return (f"dense {_digest(user_message(pair))}: change the query so that it shows "
            f"{pair.description2 or pair.txt2} second line")


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_endpoint_dense_requests(api):
    pairs = [PAIR, DensePair("Red car", "Blue car", None, "A blue car.")]
    with StandInOpenAI(_scripted) as server:
        eng = VLLMEngine("served-base", "mtg", endpoint=server.url, seed=4, endpoint_api=api,
                         dense_max_new_tokens=50)
        assert eng.generate_dense(pairs) == [expected_dense(p) for p in pairs]
        assert eng.generate([("Red car", "Blue car")]) == ["Make it Blue car"]
    common = {"max_tokens": 50, "temperature": 0.8, "top_k": 200, "stop": ["\n\n", "###"],
              "seed": 4, "n": 1}
    if api == "completions":
        (path, _, body), (edit_path, _, edit_body) = server.requests
        assert path == edit_path == "/v1/completions"
        assert body == {"model": "served-base", "prompt": [completion_prompt(p) for p in pairs], **common}
        assert edit_body["model"] == "mtg"
        assert edit_body["prompt"] == ["Red car\n&&\nBlue car\n\n### Response:"]
    else:
        assert [r[0] for r in server.requests] == ["/v1/chat/completions"] * 3
        bodies = sorted((r[2] for r in server.requests[:2]), key=lambda b: b["messages"][1]["content"])
        assert bodies == sorted(({"model": "served-base", "messages": chat_messages(p), **common}
                                 for p in pairs), key=lambda b: b["messages"][1]["content"])
        edit_body = server.requests[2][2]
        assert edit_body["model"] == "mtg"
        assert edit_body["messages"] == edit_chat_messages("Red car", "Blue car")
        assert edit_body["stop"] == ["\n", "###"] and edit_body["max_tokens"] == 32


# --- the triplets stage in dense mode -----------------------------------------------------------
def _media_pair(pair_id, txt1, txt2, w1, w2, m1, m2, rank, d1=None, d2=None):
    return {"pair_id": pair_id, "caption_id1": pair_id[:4], "caption_id2": pair_id[-4:],
            "txt1": txt1, "txt2": txt2, "word1": w1, "word2": w2, "sim_txt": 0.8,
            "media_id1": m1, "media_id2": m2, "sim_media": 0.5, "rank": rank,
            "media_kind": "video", "description1": d1, "description2": d2}


ROWS = [  # pair A: two media pairs with descriptions, one without; pair B: none at all
    _media_pair("aaaa-bbbb", "Black bird", "black bear", "bird", "bear", "v/1", "v/2", 0,
                "A black bird on a branch.", "A black bear in a forest."),
    _media_pair("aaaa-bbbb", "Black bird", "black bear", "bird", "bear", "v/3", "v/2", 1,
                "A black bird in the sky.", "A black bear in a forest."),
    _media_pair("aaaa-bbbb", "Black bird", "black bear", "bird", "bear", "v/4", "v/5", 2),
    _media_pair("cccc-dddd", "Cat on the sofa", "Cat on the bed", "sofa", "bed", "v/6", "v/7", 0),
    _media_pair("cccc-dddd", "Cat on the sofa", "Cat on the bed", "sofa", "bed", "v/8", "v/9", 1),
]


def test_candidates_carry_descriptions_per_direction_and_only_when_there_are_any():
    from covr_datagen.pipeline.stages.triplets import candidates

    forward, backward = candidates(ROWS[0], "toy", both_directions=True)
    assert (forward["description1"], forward["description2"]) == (ROWS[0]["description1"],
                                                                  ROWS[0]["description2"])
    assert (backward["description1"], backward["description2"]) == (ROWS[0]["description2"],
                                                                    ROWS[0]["description1"])
    # edit-mode rows (and their rejects) without descriptions stay as they were
    assert all("description1" not in c for c in candidates(ROWS[2], "toy", both_directions=True))


def _run_triplets(tmp_path, config):
    run = RunDir(tmp_path / "run")
    write_table(run.table("media_pairs"), ROWS, MEDIA_PAIRS)
    (report,) = run_stages([TripletStage()], run, config, RunFacts("test", corpus_name="toy"))
    rejects = run.read_table("rejects/triplets").to_pylist() if run.has_table("rejects/triplets") else []
    return report, run.read_table("triplets").to_pylist(), rejects


def test_rules_dense_stage_one_text_per_description_pair(tmp_path):
    config = Config(mtg=MtgConfig(engine="rules", mode="dense"))
    config.mtg.max_chars = 400
    # the baseline's "Turn Black bird into black bear." is shorter than the dense length bound;
    # this test is about which texts are written (the filters have tests of their own)
    config.dense_filters.min_words = 1
    report, triplets, rejects = _run_triplets(tmp_path, config)
    assert report.input == 10 and report.kept == len(triplets) == 10 and rejects == []
    for t in triplets:
        assert t["edit_dense"] == dense_baseline(DensePair(t["txt1"], t["txt2"], t["description1"],
                                                           t["description2"]))
        assert t["edit"] and t["edit"] != t["edit_dense"]
    back = next(t for t in triplets if t["pth1"] == "v/2" and t["pth2"] == "v/3")
    assert (back["description1"], back["description2"]) == ("A black bear in a forest.",
                                                            "A black bird in the sky.")
    # media pairs without descriptions share the dense text of their caption pair and direction
    plain = {t["edit_dense"] for t in triplets if t["pair_id"] == "cccc-dddd" and t["direction"] == "forward"}
    assert plain == {"Turn Cat on the sofa into Cat on the bed."}


def test_edit_mode_writes_no_dense_text(tmp_path):
    _, triplets, _ = _run_triplets(tmp_path, Config(mtg=MtgConfig(engine="rules")))
    assert {t["edit_dense"] for t in triplets} == {None}
    assert {t["description1"] for t in triplets if t["pth1"] == "v/1"} == {"A black bird on a branch."}


def test_endpoint_dense_stage_rejects_pairs_without_a_dense_text(tmp_path):
    with StandInOpenAI(_scripted) as server:
        config = Config(mtg=MtgConfig(engine="vllm", base_model="served-base", adapter="mtg",
                                      endpoint=server.url, mode="dense", batch_size=2))
        config.mtg.min_polarity = -1.0
        report, triplets, rejects = _run_triplets(tmp_path, config)
    # cccc-dddd forward targets the bed: dense texts; backward targets the sofa: empty answers
    assert report.input == 10 and report.dropped == {"dense_generation_error": 2}
    assert len(triplets) == report.kept == 8
    assert {(json.loads(r["record"])["pair_id"], json.loads(r["record"])["direction"])
            for r in rejects} == {("cccc-dddd", "backward")}
    assert all("empty dense text" in r["detail"] for r in rejects)
    for t in triplets:
        pair = DensePair(t["txt1"], t["txt2"], t["description1"], t["description2"])
        assert t["edit_dense"] == expected_dense(pair)
    dense_prompts = [p for path, _, body in server.requests if body for p in body.get("prompt", [])
                     if "Query caption:" in p]
    # one prompt per (pair, direction, descriptions): pair A 3 + 3, pair B 1 + 1
    assert len(dense_prompts) == len(set(dense_prompts)) == 8


# --- demo-sized dense builds end to end -------------------------------------------------------------
def _described_corpus(tmp_path) -> str:
    from pathlib import Path

    from covr_datagen.pipeline.commands.demo import demo_corpus_path, write_described_corpus

    return write_described_corpus(demo_corpus_path(), Path(tmp_path) / "described.csv")


def _build(corpus, out, *options) -> int:
    from covr_datagen.pipeline.cli import main as cli_main

    return cli_main(["build", "--corpus", corpus, "--format", "webvid", "--out", str(out),
                     "--no-media", "--description-col", "description", "--mtg-mode", "dense",
                     *options])


def _check_build(out, records_by_id=None):
    """Counts reconcile in every stage, descriptions are carried; returns triplets, rejects."""
    run = RunDir(out)
    manifest = run.read_manifest()
    for stage in manifest["stages"]:
        assert stage["input"] == stage["kept"] + sum(stage["dropped"].values()), stage["name"]
    triplets = run.read_table("triplets").to_pylist()
    stage = next(s for s in manifest["stages"] if s["name"] == "triplets")
    rejects = run.read_table("rejects/triplets").to_pylist() if run.has_table("rejects/triplets") else []
    assert stage["kept"] == len(triplets) > 0 and sum(stage["dropped"].values()) == len(rejects)
    described = {r["media_id"]: r["description"] for r in run.read_table("records").to_pylist()}
    assert all(described.values())
    for t in triplets:
        assert (t["description1"], t["description2"]) == (described[t["pth1"]], described[t["pth2"]])
    media_pairs = run.read_table("media_pairs").to_pylist()
    assert all(m["description1"] == described[m["media_id1"]] for m in media_pairs)
    return triplets, rejects, stage


@pytest.mark.slow
def test_dense_build_through_a_chat_endpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COVR_DENSE_KEY", KEY)
    corpus = _described_corpus(tmp_path)
    out = tmp_path / "run"
    with StandInOpenAI(_scripted, key=KEY) as server:
        rc = _build(corpus, out, "--mtg-engine", "vllm", "--mtg-endpoint", server.url + "/v1",
                    "--mtg-endpoint-api", "chat", "--mtg-base-model", "served-base",
                    "--mtg-adapter", "mtg", "--config", str(_yaml(tmp_path, "api_key_env: COVR_DENSE_KEY\n"
                                                                  "  seed: 11\n")))
    assert rc == 0, capsys.readouterr().err
    triplets, rejects, stage = _check_build(out)
    assert set(stage["dropped"]) <= {"dense_generation_error", "negative_sentiment", "long_text"}
    for t in triplets:
        assert t["edit_dense"] == expected_dense(DensePair(t["txt1"], t["txt2"], t["description1"],
                                                           t["description2"]))
        assert "sofa" not in t["txt2"]  # its dense answers were empty
        assert t["edit"] == f"Make it {t['txt2']}" and t["model"].startswith("served-base+mtg@")
    sofa = [json.loads(r["record"]) for r in rejects if r["reason"] == "dense_generation_error"]
    assert sofa and all("sofa" in r["txt2"] for r in sofa)
    # the requests: every one carries the key in its header and nowhere else
    assert {auth for _, auth, _ in server.requests} == {f"Bearer {KEY}"}
    assert all(KEY not in json.dumps(body) for _, _, body in server.requests)
    posts = [body for path, _, body in server.requests if path == "/v1/chat/completions"]
    dense = [b for b in posts if b["messages"][0]["content"] == SYSTEM]
    edits = [b for b in posts if b["messages"][0]["content"] != SYSTEM]
    assert {b["model"] for b in dense} == {"served-base"} and {b["model"] for b in edits} == {"mtg"}
    assert {b["seed"] for b in posts} == {11} and {b["max_tokens"] for b in dense} == {96}
    messages = {json.dumps(b["messages"]) for b in dense}
    wanted = {json.dumps(chat_messages(DensePair(t["txt1"], t["txt2"], t["description1"], t["description2"])))
              for t in triplets}
    assert wanted <= messages and len(messages) == len(dense)  # one request per distinct prompt
    assert len(edits) == len({(t["pair_id"], t["direction"]) for t in triplets} |
                             {(r["pair_id"], r["direction"]) for r in sofa})
    files = [p for p in out.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert files == []


def _yaml(tmp_path, mtg: str, dense_filters: str = ""):
    path = tmp_path / "dense.yaml"
    text = "mtg:\n  " + mtg + "  min_polarity: -1.0\n  max_chars: 400\n"
    if dense_filters:
        text += "dense_filters:\n  " + dense_filters
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_dense_build_with_the_hf_engine(tmp_path, capsys):
    from covr_datagen.pipeline.devtools.tiny_llm import make_tiny_llm

    tiny = str(make_tiny_llm(tmp_path / "tiny"))
    out = tmp_path / "run"
    rc = _build(_described_corpus(tmp_path), out, "--mtg-engine", "hf", "--mtg-base-model", tiny,
                "--mtg-adapter", "none", "--config",
                str(_yaml(tmp_path, "device: cpu\n  max_new_tokens: 6\n  dense_max_new_tokens: 12\n"
                                    "  concept_attempts: 1\n",
                          # a random-weight model's 12 tokens are neither long nor consistent
                          # enough for the dense filters (their own tests cover them)
                          dense_filters="min_words: 1\n  min_consistency: -1.0\n")))
    assert rc == 0, capsys.readouterr().err
    triplets, rejects, stage = _check_build(out)
    assert set(stage["dropped"]) <= {"dense_generation_error", "empty_text", "text_is_caption"}
    assert all(t["edit_dense"] and "\n" not in t["edit_dense"] for t in triplets)
    assert {t["engine"] for t in triplets} == {"hf"}
    shared = {}
    for t in triplets:  # one dense text per pair, direction and descriptions
        shared.setdefault((t["pair_id"], t["direction"], t["description1"], t["description2"]),
                          set()).add(t["edit_dense"])
    assert all(len(texts) == 1 for texts in shared.values())


@pytest.mark.slow
def test_hf_dense_texts_come_from_the_base_model_without_the_adapter(tmp_path):
    """In dense mode the adapter stays unmerged and is switched off for dense prompts: the dense
    texts equal the base model's, the one-word edits still use the adapter. A chat template,
    when the tokenizer has one, renders the dense prompt."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from covr_datagen.mtg_llm.engines.hf import HFEngine
    from covr_datagen.pipeline.devtools.tiny_llm import make_tiny_llm

    tiny = str(make_tiny_llm(tmp_path / "tiny"))
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny), lora).save_pretrained(tmp_path / "lora")
    settings = {"seed": 3, "device": "cpu", "max_new_tokens": 6, "dense_max_new_tokens": 10}
    pairs = [PAIR, DensePair("Red car", "Blue car", None, "A blue car.")]
    base = HFEngine(tiny, None, **settings)
    adapted = make_engine(MtgConfig(engine="hf", base_model=tiny, adapter=str(tmp_path / "lora"),
                                    mode="dense", seed=3, device="cpu", max_new_tokens=6,
                                    dense_max_new_tokens=10))
    assert adapted.generate_dense(pairs) == base.generate_dense(pairs)
    edits = [("Red car", "Blue car"), ("Black bird", "black bear")]
    assert adapted.generate(edits) != base.generate(edits)
    assert base.dense_prompts(pairs) == ([completion_prompt(p) for p in pairs], False)
    base.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}"
                                    "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    prompts, chat = base.dense_prompts(pairs[:1])
    assert chat and prompts == [f"<system>{SYSTEM}<user>{user_message(PAIR)}<assistant>"]


@pytest.mark.slow
def test_the_demo_in_dense_mode_describes_its_synthetic_clips(tmp_path):
    from covr_datagen.pipeline.commands.demo import run_demo
    from covr_datagen.pipeline.devtools.synthetic_media import clip_description

    config = Config(mtg=MtgConfig(engine="rules", mode="dense"))
    config.media.enabled = False
    run = run_demo(tmp_path / "run", config)
    assert (tmp_path / "run" / "demo_corpus_described.csv").is_file()
    captions = {r["media_id"]: r["caption"] for r in run.read_table("records").to_pylist()}
    triplets = run.read_table("triplets").to_pylist()
    assert triplets and all(t["edit_dense"] for t in triplets)
    for t in triplets:
        assert t["description1"] == clip_description(captions[t["pth1"]])
        assert t["edit_dense"] == dense_baseline(DensePair(t["txt1"], t["txt2"], t["description1"],
                                                           t["description2"]))


def test_mtg_generate_dense_through_a_chat_endpoint_and_with_rules(tmp_path, monkeypatch, capsys):
    from covr_datagen.pipeline.cli import main as cli_main

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("txt1,txt2,description1,description2\n"
                     "Red car,Blue car,,A blue car on a road.\n"
                     "Black bird,black bear,A bird.,A bear.\n", encoding="utf-8")
    wanted = [DensePair("Red car", "Blue car", None, "A blue car on a road."),
              DensePair("Black bird", "black bear", "A bird.", "A bear.")]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "dense.csv"
    with StandInOpenAI(_scripted, key=KEY) as server:
        assert cli_main(["mtg", "generate", "--pairs", str(pairs), "--mode", "dense", "--engine",
                         "vllm", "--base-model", "served-base", "--endpoint", server.url,
                         "--endpoint-api", "chat", "--seed", "5", "--out", str(out)]) == 0
    import csv

    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["edit_dense"] for r in rows] == [expected_dense(p) for p in wanted]
    assert rows[0]["description1"] == "" and rows[1]["description2"] == "A bear."
    posts = [body for path, _, body in server.requests if path == "/v1/chat/completions"]
    assert sorted(json.dumps(b["messages"]) for b in posts) == sorted(json.dumps(chat_messages(p))
                                                                      for p in wanted)
    assert {b["seed"] for b in posts} == {5} and KEY not in out.read_text(encoding="utf-8")
    assert cli_main(["mtg", "generate", "--pairs", str(pairs), "--mode", "dense", "--engine",
                     "rules"]) == 0
    printed = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [r["edit_dense"] for r in printed] == [dense_baseline(p) for p in wanted]
