# Everything installs itself on first use: the .venv from requirements.txt, Kafka's jars from
# Maven Central (broker/launcher.py). Nothing here needs Docker.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DELAY ?= 0.5
BIRTHDAY ?= 1997-10-02
DASHBOARD_PORT ?= 8544
# The three-node cluster (broker/launcher.py cluster): its nodes' client ports, and what the
# programs are given to reach it.
CLUSTER_PORTS ?= 9192,9193,9194
CLUSTER_DIR ?= broker/.cluster
CLUSTER_BOOTSTRAP := $(shell echo $(CLUSTER_PORTS) | sed 's/\([0-9]*\)/localhost:\1/g')

.PHONY: venv broker stop cluster cluster-stop cluster-run clean run test test-fast docker-test \
	bench chromium docker-compose

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

# Starts whichever of the three nodes are not running (so it also brings back a killed one, with
# its data) and returns once all three answer and the quorum has a leader.
cluster:
	$(PYTHON) broker/launcher.py --state-dir $(CLUSTER_DIR) cluster --ports $(CLUSTER_PORTS)

cluster-stop:
	$(PYTHON) broker/launcher.py --state-dir $(CLUSTER_DIR) cluster-stop

clean: stop cluster-stop
	rm -rf broker/.run broker/.cluster

run: venv broker
	$(PY) -m tools.run_pipeline --delay $(DELAY) --birthday $(BIRTHDAY) \
	  --dashboard-port $(DASHBOARD_PORT)

# `make run` on the cluster, every partition on all three nodes.
cluster-run: venv cluster
	KAFKA_BOOTSTRAP=$(CLUSTER_BOOTSTRAP) P7_REPLICATION_FACTOR=3 $(PY) -m tools.run_pipeline \
	  --delay $(DELAY) --birthday $(BIRTHDAY) --dashboard-port $(DASHBOARD_PORT)

# Two test processes, each with its own broker (tests/conftest.py); a test file stays in one.
# The grader's full run is one of the tests (tests/test_autograde.py).
test: venv chromium
	$(PY) -m pytest -q -n 2 --dist loadfile tests

# Debian's chromium for the dashboard's browser test (tests/test_dashboard.py), installed when
# missing and we may (root); otherwise that test fails, saying so.
chromium:
	@test -x /usr/bin/chromium || { test "$$(id -u)" = 0 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "make chromium: /usr/bin/chromium is missing and could not be installed" \
	    "(apt-get install chromium, as root); the dashboard's browser test will fail" >&2

# The unit tests alone: no Java, no broker, a few seconds.
test-fast: venv
	$(PY) -m pytest -q tests/unit

# The README's Docker section against an image built from the Dockerfile as it is, then
# autograde.py --docker, then compose.yaml's three nodes. Needs a Docker engine (CI brings one up
# with ../shared/docker/engine.sh).
docker-test: venv docker-compose
	@docker info >/dev/null 2>&1 || { echo "make docker-test: no Docker engine answers" \
	  "(docker info fails): start one first (on our machines ../shared/docker/engine.sh)." >&2; \
	  exit 1; }
	$(PY) -m pytest -q dockertests

# Compose for compose.yaml: the v2 plugin (`docker compose`) when the machine has it, else
# Debian's docker-compose 1.x, installed when missing and we may (root); otherwise the compose
# test fails, saying so.
docker-compose:
	@docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null \
	  || { test "$$(id -u)" = 0 && apt-get update -qq \
	    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; } \
	  || echo "make docker-compose: neither \`docker compose\` nor docker-compose is there and" \
	    "it could not be installed (apt-get install docker-compose, as root); the compose test" \
	    "will fail" >&2

# bench.cluster adds its section (a broker and a cluster of its own) after bench.bench's.
bench: venv broker
	PYTHONPATH=files $(PY) -m bench.bench
	PYTHONPATH=files $(PY) -m bench.cluster
