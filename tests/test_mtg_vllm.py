"""vLLM engine argument building and the OpenAI-compatible endpoint path (a local HTTP server
stands in for ``vllm serve``; vLLM itself is not exercised on CPU machines)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mtg_llm.engines import make_engine
from mtg_llm.engines.vllm import VLLMEngine, completions_url
from pipeline.config import MtgConfig


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
    srv = HTTPServer(("127.0.0.1", 0), _FakeCompletions)
    _FakeCompletions.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


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
