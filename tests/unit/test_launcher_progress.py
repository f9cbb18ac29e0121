"""The first run's progress lines (broker/launcher.py's Progress, used by the jar fetch, the
broker's start and make venv's pip install through broker/venv_install.py): one line rewritten
in place on a terminal, plain lines at most every `every` seconds elsewhere."""

import io
import subprocess
import sys

from broker import launcher
from tools.harness import ROOT


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_plain_lines_at_most_every_period(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(launcher.time, "monotonic", lambda: now[0])
    log = io.StringIO()
    progress = launcher.Progress(log, every=10)
    for step in range(25):
        progress.show(f"step {step}")
        now[0] += 1
    progress.done("done")
    assert log.getvalue().splitlines() == ["step 0", "step 10", "step 20", "done"]


def test_a_terminal_gets_one_line_rewritten_in_place():
    terminal = Terminal()
    progress = launcher.Progress(terminal)
    progress.show("step 1")
    progress.show("step 2")
    progress.done("done")
    assert terminal.getvalue() == "\r\033[Kstep 1\r\033[Kstep 2\r\033[Kdone\n"


def run_install(*args):
    return subprocess.run([sys.executable, str(ROOT / "broker" / "venv_install.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_venv_install_sums_up_in_one_line_what_pip_did():
    # Everything is there already: pip needs no network and installs nothing.
    result = run_install("--no-index", "pytest", "pyyaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("make venv: installed 0 packages")


def test_venv_install_shows_pips_error_and_its_exit_code():
    result = run_install("--no-index", str(ROOT / "no-such-package.whl"))
    assert result.returncode != 0
    assert "make venv: pip failed (exit code" in result.stderr
    assert "no-such-package.whl" in result.stderr, "pip's own lines should be shown"
