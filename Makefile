# Everything installs itself on first use: the .venv from requirements.txt, Kafka's jars from
# Maven Central (broker/launcher.py). Nothing here needs Docker.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DELAY ?= 0.5
BIRTHDAY ?= 1997-10-02

.PHONY: venv broker stop clean run test test-fast docker-test bench

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

broker:
	$(PYTHON) broker/launcher.py start

stop:
	$(PYTHON) broker/launcher.py stop

clean: stop
	rm -rf broker/.run

run: venv broker
	$(PY) -m tools.run_pipeline --delay $(DELAY) --birthday $(BIRTHDAY)

# Two test processes, each with its own broker (tests/conftest.py); a test file stays in one.
# The grader's full run is one of the tests (tests/test_autograde.py).
test: venv
	$(PY) -m pytest -q -n 2 --dist loadfile tests

# The unit tests alone: no Java, no broker, a few seconds.
test-fast: venv
	$(PY) -m pytest -q tests/unit

# The README's Docker section against an image built from the Dockerfile as it is, then
# autograde.py --docker. Needs a Docker engine (CI brings one up with ../shared/docker/engine.sh).
docker-test: venv
	@docker info >/dev/null 2>&1 || { echo "make docker-test: no Docker engine answers" \
	  "(docker info fails): start one first (on our machines ../shared/docker/engine.sh)." >&2; \
	  exit 1; }
	$(PY) -m pytest -q dockertests

bench: venv broker
	PYTHONPATH=files $(PY) -m bench.bench
