# deploy lab. `make help` lists the targets. Everything installs into .venv, so `make test` works on a
# fresh clone with nothing but Python 3.11+ and a running Docker engine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB    := $(BIN)/lab
STRATEGY ?= blue-green
ARGS   ?=
FILE   ?= deploylab-images.tar.gz
# Integration tests at a time: 1 on this 2-core machine. Two side by side took 10.7 min instead of 15.5
# (the workshop's commands included), but in 3 of 4 such suites one test failed on what a run alone never
# shows: a reset at a reload, a network's lost endpoint count in Docker, a DNS miss as a swarm was left
# (with 3, 6 of 60 tests saw resets, flip-flops or a 30 s health timeout). The tests that assert "nothing
# dropped" are right to fail on them: JOBS=2 only where there are cores to spare. Tried again after the
# probe began polling idle connections (fewer resets on a busy machine): 1 of 3 such suites passed; the
# others saw resets at reloads while the machine stalled answers by up to 2.6 s. The serial tests (the
# swarm's, the bundle's) always run alone, last.
JOBS   ?= 1
# The ten longest tests of each session are printed at its end: where the suite's time goes.
INTEGRATION := $(BIN)/pytest -m 'docker and not serial' --durations=10 $(if $(filter-out 1,$(JOBS)),-n $(JOBS) \
	--dist loadgroup) tests/integration && $(BIN)/pytest -m 'docker and serial' --durations=10 tests/integration

.DEFAULT_GOAL := help
.PHONY: help install system-deps images bundle load-bundle run plan test checks unit integration lint bench compose-files workshop-check clean distclean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(BIN)/lab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# The lab's own modules compiled ahead: where PYTHONDONTWRITEBYTECODE is set (this CI's machines), Python
# would compile them at every start, 0.2 s of each `lab` (measured: the imports of a run, 0.76 s against
# 0.56 s). Up-to-date files are only looked at; a file edited later is compiled in memory as ever.
install: $(BIN)/lab ## Install the lab and its test tools into .venv
	@$(BIN)/python -m compileall -q lab sample_app scripts

system-deps: ## Install debootstrap, nginx (and chromium on Debian) from apt when missing, as root
	@scripts/system-deps.sh

images: install system-deps ## Build the app (v1, v2) and proxy images; offline if no registry is reachable
	$(LAB) images

bundle: images ## Write every image the lab needs to one file for offline use: make bundle FILE=/media/usb/x.tar.gz
	$(LAB) images export $(FILE)

load-bundle: install ## Load a bundle written by `make bundle` (no registry, no build): make load-bundle FILE=...
	$(LAB) images import $(FILE)

run: images ## Run a deployment: make run STRATEGY=in-place ARGS='--mode fresh'
	$(LAB) run $(STRATEGY) $(ARGS)

plan: install ## Print a strategy's steps and nginx configs (no Docker): make plan STRATEGY=in-place
	$(LAB) plan $(STRATEGY) $(ARGS)

# Each job's output in one piece, where make has it (4.0 and later; macOS ships 3.81).
SYNC   := $(if $(filter output-sync,$(.FEATURES)),--output-sync=target)

test: install ## Everything: lint and unit tests while the images build, then the integration tests on real containers (the workshop's commands among them)
	$(MAKE) --no-print-directory -j2 $(SYNC) images checks
	$(INTEGRATION)

checks: lint system-deps
	LAB_REQUIRE_NGINX=1 $(BIN)/pytest -n auto tests/unit

unit: install ## Unit tests only (no Docker, no network), on every core
	$(BIN)/pytest -n auto tests/unit

integration: images ## Integration tests only (real containers, the workshop's commands among them); JOBS=N: N side by side
	$(INTEGRATION)

lint: install ## ruff, mypy and the import contracts (pyproject.toml)
	$(BIN)/ruff check lab sample_app tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: images ## Probe benchmark: highest sustained rate in each connection mode
	$(BIN)/python -m lab.probe.bench $(ARGS)

compose-files: install ## Render compose/ again from the lab's nginx template (a unit test checks they match)
	$(BIN)/python -m lab.compose_files

workshop-check: install ## Run every command of docs/workshop in order, as written (minutes; needs Docker)
	$(BIN)/python scripts/workshop_check.py

clean: ## Remove every container and network the lab left behind
	@if [ -x $(LAB) ]; then $(LAB) clean; else echo "nothing installed: nothing to clean"; fi

distclean: clean ## Also remove the lab's images, the venv and run folders
	-$(LAB) clean --images
	rm -rf $(VENV) runs *.egg-info
