"""requirements.lock agrees with requirements.txt and requirements-dev.txt, and pins every
package they need, the ones underneath included; the venv and the image both install through it.

Offline: the dependencies of each package are read from the venv's installed metadata (the venv
is built from the lock, so it holds the locked versions; where it does not, the check says to
run `make venv`). Each check also runs on a spoiled copy, to show that it can fail."""

import importlib.metadata
import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.harness import ROOT

LOCK = ROOT / "requirements.lock"
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-dev.txt")


def pins(path, seen=()):
    """{name: version} of a requirements file's `name==version` lines, following `-r FILE`."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            included = path.parent / line[3:].strip()
            if included not in seen:
                found.update(pins(included, seen + (path,)))
        elif line:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\S+)", line)
            assert match, f"{path.name}: {line!r} is not pinned as name==version"
            found[canonicalize_name(match[1])] = match[2]
    return found


def installed_requirements(name, version):
    """What the venv's `name` (which must be at `version`) requires."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise AssertionError(f"{name} is not installed in this venv: run `make venv`") from None
    if dist.version != version:
        raise AssertionError(f"the venv holds {name} {dist.version} and the lock {version}: run "
                             "`make venv`")
    return [Requirement(text) for text in dist.requires or ()]


def disagreements(lock_path=LOCK, requirement_paths=REQUIREMENTS,
                  requires=installed_requirements):
    """One sentence per way the lock fails the requirements files; none when it serves them."""
    lock = pins(lock_path)
    direct = {}
    for path in requirement_paths:
        direct.update(pins(path))
    problems = []
    for name, version in sorted(direct.items()):
        if lock.get(name) != version:
            problems.append(f"requirements pin {name}=={version}, the lock "
                            f"{'has ' + lock[name] if name in lock else 'does not have it'}")
    reached, queue = set(), [name for name in direct if name in lock]
    while queue:
        name = queue.pop()
        if name in reached:
            continue
        reached.add(name)
        for requirement in requires(name, lock[name]):
            # Only what applies on this Python, without extras (the lock is made for it).
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            needed = canonicalize_name(requirement.name)
            if needed not in lock:
                problems.append(f"{name} needs {requirement}, which the lock does not pin")
            elif not requirement.specifier.contains(lock[needed], prereleases=True):
                problems.append(f"{name} needs {requirement}, and the lock pins "
                                f"{needed}=={lock[needed]}")
            else:
                queue.append(needed)
    problems += [f"the lock pins {name}, which nothing requires"
                 for name in sorted(set(lock) - reached)]
    return problems


def test_the_lock_pins_exactly_what_the_requirements_need():
    problems = disagreements()
    assert not problems, ("requirements.lock disagrees with requirements*.txt (run `make lock`, "
                          "then `make venv`): " + "; ".join(problems))


def test_grpcio_is_locked_at_grpcio_tools_version():
    lock = pins(LOCK)
    assert lock["grpcio"] == lock["grpcio-tools"]


def test_the_venv_and_the_image_install_through_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"venv_install\.py -r requirements-dev\.txt -c \$\(LOCK\)", makefile)
    assert '"-m", "pip", "install"' in (ROOT / "broker" / "venv_install.py").read_text()
    assert "LOCK := requirements.lock" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = re.split(r"^FROM ", dockerfile, flags=re.M)[-1]
    # By default (no --build-arg) the image installs requirements.txt through requirements.lock.
    assert "ARG PYTHON_REQUIREMENTS=requirements.txt\n" in final_stage
    assert "ARG PYTHON_CONSTRAINTS=requirements.lock\n" in final_stage
    assert "COPY ${PYTHON_REQUIREMENTS} /opt/p7/requirements.txt\n" in final_stage
    assert "COPY ${PYTHON_CONSTRAINTS} /opt/p7/requirements.lock\n" in final_stage
    assert re.search(r"pip install [^\n]*-r /opt/p7/requirements\.txt -c "
                     r"/opt/p7/requirements\.lock", final_stage)


# ---- the check on spoiled copies: each must be caught

FAKE_METADATA = {  # name -> what it requires, for the spoiled copies below
    "app": ["lib>=2", "tool; python_version < '3'", "extra-only; extra == 'fast'"],
    "lib": ["base"],
    "base": [],
}


def fake_requires(name, _version):
    return [Requirement(text) for text in FAKE_METADATA.get(name, [])]


def spoiled(tmp_path, requirements, lock):
    (tmp_path / "requirements.txt").write_text(requirements)
    (tmp_path / "requirements.lock").write_text(lock)
    return disagreements(tmp_path / "requirements.lock", (tmp_path / "requirements.txt",),
                         fake_requires)


GOOD_LOCK = "app==1.0\n    # via -r requirements.txt\nlib==2.1\nbase==0.3\n"


def test_a_complete_lock_passes(tmp_path):
    # A requirement whose marker does not hold here (tool; extra-only) needs no pin.
    assert spoiled(tmp_path, "app==1.0\n", GOOD_LOCK) == []


@pytest.mark.parametrize("lock, complaint", [
    ("app==1.0\nlib==2.1\n", "lib needs base, which the lock does not pin"),
    ("app==1.0\nlib==1.9\nbase==0.3\n", "app needs lib>=2, and the lock pins lib==1.9"),
    ("app==1.1\nlib==2.1\nbase==0.3\n", "requirements pin app==1.0, the lock has 1.1"),
    ("lib==2.1\nbase==0.3\n", "requirements pin app==1.0, the lock does not have it"),
    (GOOD_LOCK + "stale==9\n", "the lock pins stale, which nothing requires"),
])
def test_a_spoiled_lock_is_caught(tmp_path, lock, complaint):
    assert complaint in spoiled(tmp_path, "app==1.0\n", lock)


def test_an_unpinned_requirement_is_caught(tmp_path):
    with pytest.raises(AssertionError, match="not pinned"):
        spoiled(tmp_path, "app>=1.0\n", GOOD_LOCK)
