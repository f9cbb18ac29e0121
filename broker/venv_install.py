"""`make venv`'s pip install, with one progress line instead of pip's many (or its silence):

    .venv/bin/python broker/venv_install.py -r requirements-dev.txt -c requirements.lock

runs `python -m pip install ARGS` and shows how many packages pip has collected and how many MB
it has downloaded, rewritten in place on a terminal and as a plain line every 10 s elsewhere (CI,
a log); then one line with the total. When pip fails, its last lines are shown and its exit code
is ours. Standard library only (it runs in the venv before anything is installed there).
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from launcher import Progress  # noqa: E402  (the launcher's progress line, one implementation)

COLLECTING = re.compile(r"^Collecting (\S+)")
DOWNLOADING = re.compile(r"^\s*Downloading \S+ \(([\d.]+) (kB|MB|GB)\)")
INSTALLED = re.compile(r"^Successfully installed (.*)")
UNIT_MB = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}
TAIL_ON_FAILURE = 30


def main(argv):
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
         "--progress-bar", "off", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    progress, output = Progress(), []
    collected, downloaded, installed = 0, 0.0, 0
    for line in process.stdout:
        output.append(line.rstrip())
        if COLLECTING.match(line):
            collected += 1
        elif match := DOWNLOADING.match(line):
            downloaded += float(match[1]) * UNIT_MB[match[2]]
        elif match := INSTALLED.match(line):
            installed = len(match[1].split())
        progress.show(f"make venv: pip collected {collected} packages, downloaded "
                      f"{downloaded:.1f} MB, {time.monotonic() - started:.0f} s")
    code = process.wait()
    if code != 0:
        progress.clear()
        print("\n".join(output[-TAIL_ON_FAILURE:]), file=sys.stderr)
        progress.done(f"make venv: pip failed (exit code {code}); its last lines are above")
        return code
    progress.done(f"make venv: installed {installed} packages ({downloaded:.0f} MB downloaded) "
                  f"in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
