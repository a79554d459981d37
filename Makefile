# Two commands a new user needs: `make demo` and `make test`.
# Both build (once) and reuse a local virtual environment pinned by constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# dev: every part of pyproject.toml (demo = train + report + synthweb, and gcp) plus the
# test tools, one pinned resolution for all (constraints.txt). The curation jobs alone need
# no extra; see the README's "Installs" section.
EXTRAS ?= dev
RUN ?= runs/demo

.PHONY: demo experiment test lint bench venv clean browser tensorboard

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/align-demo $(ARGS)

# ALIGN's curation claims over seeds: arms (b)-(e) and (b) at equal epochs, 4 seeds per arm,
# seed-paired p-values (65 min measured on 2 cores; docs/model.md).
experiment: $(STAMP)
	$(BIN)/align-demo --experiment $(ARGS)

# The scalars of every model trained under RUN (the demo's by default): make tensorboard RUN=...
tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir $(RUN) $(ARGS)

# Whole files to each of two workers, in collection order (not xdist's most-tests-first):
# tests/conftest.py puts the files with slow tests first, so no long file starts last.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(ARGS)

# Headless Chromium for the filter report's layout tests (they skip without it). Installed
# with apt-get as root, or sudo without a password; says why not where it cannot.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  echo "browser: $$(command -v chromium || command -v chromium-browser)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser: no apt-get here; install Chromium yourself to run the layout tests" >&2; exit 1; \
	else \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  packages="chromium fonts-dejavu-core"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$sudo apt-get install -y -q --no-install-recommends $$packages >/dev/null \
	  || { $$sudo apt-get update -q >/dev/null && \
	       $$sudo apt-get install -y -q --no-install-recommends $$packages >/dev/null; } \
	  || { echo "browser: apt-get could not install chromium" >&2; exit 1; }; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .


bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
