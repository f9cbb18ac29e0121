"""tools/harness.py without an engine: what a failed `docker build` is reduced to.

make docker-test runs a really broken build through the legacy builder; these cover both
builders' layouts (BuildKit's is what a user's Docker Desktop prints), no broker needed."""

from tools import harness

STEP = "RUN apt-get install -y no-such-package"
ERROR = "E: Unable to locate package no-such-package"


def test_legacy_builder_output_gives_the_step_and_its_error_lines():
    stdout = "\n".join([
        "Sending build context to Docker daemon  4.1MB",
        "Step 1/9 : FROM python:3.11-slim-bookworm AS runtime",
        " ---> c1162e3904c9",
        f"Step 2/9 : {STEP}",
        " ---> Running in 0345124f7f0c",
        "Reading package lists...",
        f"\x1b[91m{ERROR}\n\x1b[0mRemoving intermediate container 0345124f7f0c",
    ])
    stderr = "\n".join([
        "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.",
        "            Install the buildx component to build images with BuildKit:",
        "            https://docs.docker.com/go/buildx/",
        "",
        f"The command '/bin/sh -c {STEP[4:]}' returned a non-zero code: 100",
    ])
    summary = harness.build_failure(stdout + "\n" + stderr).splitlines()
    assert summary[0] == f"Step 2/9: {STEP}"
    assert ERROR in summary and summary[-1].endswith("returned a non-zero code: 100")
    assert not any("DEPRECATED" in line or "buildx" in line or "\x1b" in line
                   or "intermediate container" in line for line in summary), summary


def test_buildkit_output_gives_the_step_and_its_error_lines():
    output = "\n".join([
        "#5 [runtime 2/2] " + STEP,
        "#5 0.512 Reading package lists...",
        f"#5 0.913 {ERROR}",
        f'#5 ERROR: process "/bin/sh -c {STEP[4:]}" did not complete successfully: exit code: 100',
        "------",
        f" > [runtime 2/2] {STEP}:",
        "0.512 Reading package lists...",
        f"0.913 {ERROR}",
        "------",
        "Dockerfile:11",
        "--------------------",
        f"  11 | >>> {STEP}",
        "--------------------",
        f'ERROR: failed to solve: process "/bin/sh -c {STEP[4:]}" did not complete '
        "successfully: exit code: 100",
    ])
    summary = harness.build_failure(output).splitlines()
    assert summary[0] == f"step [runtime 2/2] {STEP}"
    assert f"0.913 {ERROR}" in summary
    assert summary[-1].startswith("ERROR: failed to solve:")
    assert not any(line.startswith("Dockerfile:") for line in summary)


def test_output_of_neither_kind_keeps_its_last_lines():
    lines = [f"line {n}" for n in range(30)]
    summary = harness.build_failure("\n".join(lines)).splitlines()
    assert summary == lines[-harness.BUILD_ERROR_LINES:]
