# Everything installs itself on first use: the .venv from requirements*.txt pinned by
# requirements.lock, Kafka's jars from Maven Central (broker/launcher.py). Nothing here needs
# Docker.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every Python package's version, direct or not, for the venv and the image alike (make lock).
LOCK := requirements.lock
# The course image's pins (students' programs run with them: grader/course_env.py) and every
# package underneath them (make course-lock).
COURSE_REQUIREMENTS := grader/course-requirements.txt
COURSE_LOCK := grader/course.lock
PIP_TOOLS := pip-tools==7.6.2
DELAY ?= 0.5
BIRTHDAY ?= 1997-10-02
DASHBOARD_PORT ?= 8544
# The three-node cluster (broker/launcher.py cluster): its nodes' client ports, and what the
# programs are given to reach it.
CLUSTER_PORTS ?= 9192,9193,9194
CLUSTER_DIR ?= broker/.cluster
CLUSTER_BOOTSTRAP := $(shell echo $(CLUSTER_PORTS) | sed 's/\([0-9]*\)/localhost:\1/g')

.PHONY: venv lock course-lock broker stop cluster cluster-stop cluster-run clean run test test-fast \
	test-chaos test-all docker-test bench chromium docker-compose

venv: $(VENV)/.installed

# Python 3.11+ with venv is checked first (one sentence, before anything is installed; Java only
# gets a warning: the venv does not need it). pip's progress is one line (venv_install.py).
# Every package, the ones underneath included, comes at the version requirements.lock pins;
# tests/unit/test_lock.py fails when the lock and the requirements files disagree.
$(VENV)/.installed: requirements.txt requirements-dev.txt $(LOCK) broker/preflight.py \
		broker/venv_install.py
	@$(PYTHON) broker/preflight.py
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) broker/venv_install.py -r requirements-dev.txt -c $(LOCK)
	touch $@

# Re-resolves requirements.lock from requirements-dev.txt (which includes requirements.txt) with
# pip-tools, in a throwaway venv; pins already in the lock stay where they still fit
# (`make lock UPGRADE=1` takes the newest of everything). Commit the lock with the change.
lock:
	$(call pip_compile,lock,$(LOCK),requirements-dev.txt)

# Re-resolves grader/course.lock from grader/course-requirements.txt the same way (for the
# Python that runs make: the course venv is built with it). Commit the lock with the change.
course-lock:
	$(call pip_compile,course-lock,$(COURSE_LOCK),$(COURSE_REQUIREMENTS))

# $(call pip_compile,TARGET,LOCK FILE,REQUIREMENTS FILE): pip-compile in a throwaway venv, the
# lock's header naming `make TARGET` as the command that wrote it.
define pip_compile
@tools=$$(mktemp -d) && trap 'rm -rf "$$tools"' EXIT \
  && $(PYTHON) -m venv "$$tools" \
  && "$$tools/bin/pip" install --quiet --disable-pip-version-check $(PIP_TOOLS) \
  && CUSTOM_COMPILE_COMMAND="make $(1)" "$$tools/bin/pip-compile" --quiet --allow-unsafe \
    --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
    $(if $(UPGRADE),--upgrade) --output-file=$(2) $(3)
endef

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
	$(PY) -m tools.scripts.run_pipeline --delay $(DELAY) --birthday $(BIRTHDAY) \
	  --dashboard-port $(DASHBOARD_PORT)

# `make run` on the cluster, every partition on all three nodes.
cluster-run: venv cluster
	KAFKA_BOOTSTRAP=$(CLUSTER_BOOTSTRAP) P7_REPLICATION_FACTOR=3 \
	  $(PY) -m tools.scripts.run_pipeline --delay $(DELAY) --birthday $(BIRTHDAY) \
	  --dashboard-port $(DASHBOARD_PORT)

# The test tiers are pytest markers (pytest.ini; tests/conftest.py gives every test in tests/unit
# the unit marker and refuses a test elsewhere that has no tier).
# make test: the unit and broker tiers, in four processes, each with a session broker of its
# own (tests/conftest.py); the grader's runs of both versions' corpus are among them
# (tests/test_autograde*.py). Many broker tests mostly wait (for a timeout, a restart, a
# grader's checks), so processes beyond the two cores overlap those waits. A process that runs
# out of tests takes half of another's queue (worksteal), so the many quick unit tests fill in
# around the long ones.
test: venv chromium
	$(PY) -m pytest -q -n 4 --dist worksteal -m "not chaos" tests

# The chaos tier: brokers and clusters of the tests' own, started, killed -9 and fetched (the
# three-node cluster's failover, outages under load, the launcher's brokers and Maven fetch).
# A test file stays in one process: the cluster is shared by its module.
test-chaos: venv
	$(PY) -m pytest -q -n 2 --dist loadfile -m chaos tests

# Every tier: make test's recipe first, then make test-chaos's (CI runs this).
test-all: test test-chaos

# A Chromium or Chrome on PATH for the dashboard's browser test (tests/test_dashboard.py), under
# the names tests/browser.py looks for; Debian's chromium is installed when none is there and we
# may (root). Otherwise that test is skipped (in CI: fails), saying how to install one.
chromium:
	@for name in chromium chromium-browser google-chrome google-chrome-stable chrome; do \
	  command -v $$name >/dev/null && exit 0; done; \
	  { test "$$(id -u)" = 0 && apt-get update -qq \
	    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "make chromium: no Chromium or Chrome on PATH and it could not be installed" \
	    "(apt-get install chromium, as root); the dashboard's browser test will be skipped" \
	    "(in CI: fail)" >&2

# The unit tier alone: no Java, no broker.
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

# bench.cluster and bench.grading add their sections (brokers of their own) after bench.bench's.
bench: venv broker
	PYTHONPATH=files $(PY) -m bench.bench
	PYTHONPATH=files $(PY) -m bench.cluster
	PYTHONPATH=files $(PY) -m bench.grading
