# covr-datagen: `make demo` runs the pipeline on the bundled demo corpus, `make test` lints (ruff) and runs the tests.
# Both do all set-up first (Debian packages, .venv/, Python dependencies); set-up is idempotent.
VENV  := .venv
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test bench clean mtg-adapter

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/covr-datagen demo --out out/demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -p no:cacheprovider

# retrain the shipped MTG-LLM adapter (built-in SmolLM2-135M, shipped data; docs/MTG.md)
mtg-adapter: setup
	$(VENV)/bin/covr-datagen mtg train --base-model smollm2-135m --out mtg_llm/adapters/smollm2-135m-mtg

clean:
	rm -rf out/ .pytest_cache .hypothesis
