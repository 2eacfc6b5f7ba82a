# covr-datagen: `make demo` runs the pipeline on the bundled demo corpus, `make test` lints (ruff) and runs the tests.
# Both do all set-up first (Debian packages, .venv/, Python dependencies); set-up is idempotent.
VENV  := .venv
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/covr-datagen demo --out out/demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf out/ .pytest_cache .hypothesis
