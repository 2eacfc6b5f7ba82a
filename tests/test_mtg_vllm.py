"""vLLM engine argument building and the OpenAI-compatible endpoint path (a local HTTP server
stands in for ``vllm serve``; vLLM itself is not exercised on CPU machines)."""

import json
from http.server import BaseHTTPRequestHandler

import pytest

from covr_datagen.mtg_llm.engines import make_engine
from covr_datagen.mtg_llm.engines.vllm import VLLMEngine, completions_url
from covr_datagen.pipeline.config import MtgConfig
from covr_datagen.pipeline.core.rundir import RunDir
from tests.helpers import serving


def test_in_process_arguments(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    eng = make_engine(MtgConfig(engine="vllm", base_model="meta-llama/Llama-2-7b-hf",
                                adapter=str(tmp_path), seed=5, max_new_tokens=24))
    assert isinstance(eng, VLLMEngine)
    assert eng.engine_kwargs() == {"model": "meta-llama/Llama-2-7b-hf", "seed": 5,
                                   "enable_lora": True, "max_lora_rank": 64, "max_loras": 1}
    assert eng.sampling_kwargs() == {"n": 1, "top_k": 200, "temperature": 0.8, "max_tokens": 24,
                                     "stop": ["\n", "###"], "seed": 5}
    assert eng.lora_request_args() == ("mtg", 1, str(tmp_path))
    ident = eng.identity()
    assert ident["engine"] == "vllm" and ident["seed"] == 5
    assert ident["model"].startswith(f"meta-llama/Llama-2-7b-hf+{tmp_path}@")


def test_without_adapter_no_lora():
    eng = VLLMEngine("base")
    assert "enable_lora" not in eng.engine_kwargs()
    assert eng.lora_request_args() is None
    with pytest.raises(ValueError, match="base_model"):
        VLLMEngine(None)


@pytest.mark.parametrize("given,url", [
    ("http://h:8000", "http://h:8000/v1/completions"),
    ("http://h:8000/v1/", "http://h:8000/v1/completions"),
    ("http://h:8000/v1/completions", "http://h:8000/v1/completions"),
    ("http://h:8000/v1?api-version=2", "http://h:8000/v1/completions?api-version=2"),
    ("https://g/openai/completions", "https://g/openai/completions"),
])
def test_completions_url(given, url):
    assert completions_url(given) == url


class _FakeCompletions(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        if body["model"] == "broken":
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "no such model"}')
            return
        # answer out of order: the engine must sort by index
        choices = [{"index": i, "text": f" Edit {i}\nrest"} for i in range(len(body["prompt"]))]
        data = json.dumps({"choices": choices[::-1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _FakeCompletions.requests = []
    with serving(_FakeCompletions) as url:
        yield url


def test_endpoint_payload_and_parsing(server):
    eng = make_engine(MtgConfig(engine="vllm", base_model="base", adapter="mtg",
                                endpoint=server + "/v1", seed=3, max_new_tokens=16))
    eng.setup()
    texts = eng.generate([("Black bird", "black bear"), ("Happy woman", "Running woman")])
    assert texts == ["Edit 0", "Edit 1"]
    (path, body), = _FakeCompletions.requests
    assert path == "/v1/completions"
    assert body == {"model": "mtg", "prompt": ["Black bird\n&&\nblack bear\n\n### Response:",
                                               "Happy woman\n&&\nRunning woman\n\n### Response:"],
                    "max_tokens": 16, "temperature": 0.8, "top_k": 200,
                    "stop": ["\n", "###"], "seed": 3, "n": 1}


def test_endpoint_errors_are_clear(server):
    eng = VLLMEngine(None, "broken", endpoint=server)
    with pytest.raises(RuntimeError, match="answered 400"):
        eng.generate([("a b", "a c")])


# --- API keys (issue #16 item 8) ------------------------------------------------------------------
KEY = "sk-test-3f9a1c77e2b0d4"


class _KeyedCompletions(BaseHTTPRequestHandler):
    """A stand-in for ``vllm serve --api-key KEY``: every /v1 route wants ``Bearer KEY``."""

    seen_auth: list = []

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization")
        type(self).seen_auth.append(auth)
        if auth == f"Bearer {KEY}":
            return True
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"error": f"invalid key {auth}"}).encode())
        return False

    def _json(self, data: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(data).encode())

    def do_GET(self):  # noqa: N802 - http.server API
        if self._authorised():
            self._json({"data": [{"id": "mtg"}]})

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self._authorised():
            choices = [{"index": i, "text": f" Make it a different scene {i}"}
                       for i in range(len(body["prompt"]))]
            self._json({"choices": choices})

    def log_message(self, *args):
        pass


@pytest.fixture
def keyed_server(monkeypatch):
    for name in ("OPENAI_API_KEY", "VLLM_API_KEY", "COVR_TEST_KEY"):
        monkeypatch.delenv(name, raising=False)
    _KeyedCompletions.seen_auth = []
    with serving(_KeyedCompletions) as url:
        yield url


@pytest.mark.parametrize("env", ["OPENAI_API_KEY", "VLLM_API_KEY", "COVR_TEST_KEY"])
def test_the_key_is_read_from_the_environment_and_sent_as_a_bearer_token(keyed_server,
                                                                          monkeypatch, env):
    monkeypatch.setenv(env, KEY)
    cfg = MtgConfig(engine="vllm", adapter="mtg", endpoint=keyed_server,
                    api_key_env="COVR_TEST_KEY" if env == "COVR_TEST_KEY" else "OPENAI_API_KEY")
    eng = make_engine(cfg)
    eng.check_access()
    assert eng.generate([("Black bird", "black bear")]) == ["Make it a different scene 0"]
    assert _KeyedCompletions.seen_auth == [f"Bearer {KEY}"] * 2


@pytest.mark.parametrize("key", [None, "sk-wrong-key-55"])
def test_a_refused_key_is_one_clear_error_without_the_key(keyed_server, monkeypatch, key):
    from covr_datagen.mtg_llm.engines.vllm import EndpointSetupError, EndpointUnusable

    if key:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    eng = VLLMEngine(None, "mtg", endpoint=keyed_server)
    with pytest.raises(EndpointSetupError) as info:
        eng.check_access()
    message = str(info.value)
    assert "answered 401" in message and "OPENAI_API_KEY" in message
    assert ("was refused" if key else "no key was sent") in message
    assert "\n" not in message and (key is None or key not in message)
    with pytest.raises(EndpointUnusable, match="answered 401"):  # worker side: stops the stage
        eng.generate([("a b", "a c")])


def test_unreachable_or_credentials_in_the_url_are_setup_errors(monkeypatch):
    from covr_datagen.mtg_llm.engines.vllm import EndpointSetupError

    with pytest.raises(EndpointSetupError, match="cannot be reached"):
        VLLMEngine(None, "mtg", endpoint="http://127.0.0.1:9/v1", timeout_s=5).check_access()
    with pytest.raises(EndpointSetupError, match="credentials in the URL") as info:
        VLLMEngine(None, "mtg", endpoint=f"http://u:{KEY}@127.0.0.1:9/v1").check_access()
    assert KEY not in str(info.value)


@pytest.mark.parametrize("url,expected", [
    (f"http://u:{KEY}@h:8000/v1?api_key={KEY}#x", "http://REDACTED@h:8000/v1?REDACTED#REDACTED"),
    (f"https://{KEY}@[::1]:443/v1", "https://REDACTED@[::1]:443/v1"),
    ("http://h:8000/v1", "http://h:8000/v1"),
    ("/data/webvid.csv", "/data/webvid.csv"),
])
def test_redact_url(url, expected):
    from covr_datagen.pipeline.redact import redact_url

    assert redact_url(url) == expected


def _grep_tree(root, needle: str) -> list[str]:
    from pathlib import Path

    return [str(p) for p in Path(root).rglob("*")
            if p.is_file() and needle.encode() in p.read_bytes()]


def test_a_build_against_a_keyed_server_records_no_credential(keyed_server, monkeypatch,
                                                               tmp_path, capsys):
    """The issue's case end to end: a build whose endpoint needs a key (and whose URL carries
    one in its query string) succeeds with the key in the environment, and neither the run
    directory, the export, the report nor the console holds the key."""
    from covr_datagen.pipeline.cli import main as cli_main
    from covr_datagen.pipeline.commands.demo import demo_corpus_path

    out = tmp_path / "run"
    endpoint = f"{keyed_server}/v1?api_key={KEY}"
    argv = ["build", "--corpus", demo_corpus_path(), "--format", "webvid", "--out", str(out),
            "--no-media", "--mtg-engine", "vllm", "--mtg-adapter", "mtg", "--mtg-endpoint",
            endpoint]
    assert cli_main(argv) == 2  # no key in the environment: one line, exit 2
    err = capsys.readouterr().err
    assert "answered 401 (not authorised): no key was sent: set $OPENAI_API_KEY" in err
    assert "Traceback" not in err

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert cli_main(argv) == 0
    assert cli_main(["export", "--run", str(out), "--out", str(out / "export" / "covr.csv")]) == 0
    assert cli_main(["report", "--run", str(out)]) == 0
    assert cli_main(["config", "--config", str(_config_with_endpoint(tmp_path, endpoint))]) == 0
    console = capsys.readouterr()
    run = RunDir(out)
    models = set(run.read_table("triplets", columns=["model"])["model"].to_pylist())
    assert models == {f"smollm2-135m+mtg@{keyed_server}/v1?REDACTED"}  # the default base name
    assert run.read_manifest()["config"]["mtg"]["endpoint"] == f"{keyed_server}/v1?REDACTED"
    assert (out / "report" / "DATASET_CARD.md").is_file() and (out / "export" / "covr.csv").is_file()
    assert _grep_tree(out, KEY) == []
    assert KEY not in console.out + console.err


def _config_with_endpoint(tmp_path, endpoint: str):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"mtg:\n  engine: vllm\n  endpoint: '{endpoint}'\n", encoding="utf-8")
    return path


def test_mtg_generate_uses_the_key_and_fails_clearly_without_it(keyed_server, monkeypatch,
                                                                 tmp_path, capsys):
    from covr_datagen.pipeline.cli import main as cli_main

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("txt1,txt2\nBlack bird,black bear\n", encoding="utf-8")
    argv = ["mtg", "generate", "--pairs", str(pairs), "--engine", "vllm", "--adapter", "mtg",
            "--endpoint", keyed_server, "--api-key-env", "COVR_TEST_KEY",
            "--out", str(tmp_path / "texts.csv")]
    assert cli_main(argv) == 2
    assert "no key was sent: set $COVR_TEST_KEY" in capsys.readouterr().err
    monkeypatch.setenv("COVR_TEST_KEY", KEY)
    assert cli_main(argv) == 0
    text = (tmp_path / "texts.csv").read_text(encoding="utf-8")
    assert "Make it a different scene 0" in text and KEY not in text
