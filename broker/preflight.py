"""What `make venv` checks before it installs anything: the Python it was given, then Java.

    python3 broker/preflight.py

Python older than 3.11 (the pinned numpy and matplotlib need 3.11), or one without its venv
module, ends with one sentence saying what is needed and what was found, and exit 1: pip would
otherwise fail after minutes with a resolver error of many lines. Java is only warned about (one
sentence, exit 0): the venv does not need it, and its programs can use a broker in Docker; the
launcher itself refuses to start a broker on a Java that is missing or too old.

Written in the syntax of any Python 3 (no f-strings), so that an old interpreter reaches the
version check instead of a SyntaxError.
"""

import os
import sys

PYTHON_MIN = (3, 11)


def python_problem():
    found = "%d.%d.%d" % tuple(sys.version_info[:3])
    if tuple(sys.version_info[:2]) < PYTHON_MIN:
        return ("needs Python %d.%d or newer (the pinned numpy and matplotlib need it), and %s is "
                "Python %s: install a newer one and run make with PYTHON=/path/to/python3.11"
                % (PYTHON_MIN + (sys.executable, found)))
    try:
        import ensurepip  # noqa: F401  (Debian splits it off into python3-venv)
        import venv  # noqa: F401
    except ImportError:
        return ("needs Python's venv module, which %s (Python %s) lacks: install it (on Debian "
                "and Ubuntu `apt-get install python3-venv`)" % (sys.executable, found))
    return None


def main():
    problem = python_problem()
    if problem:
        sys.stderr.write("make venv: %s.\n" % problem)
        return 1
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import launcher
    try:
        launcher.java_command()
    except launcher.LauncherError as err:
        sys.stderr.write("make venv: warning: %s (the venv is installed all the same; `make "
                         "broker` and `make test` need it).\n" % err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
