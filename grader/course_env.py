"""The course's Python environment: what students' programs are graded with.

Students wrote P7 against the course image's packages (grader/course-requirements.txt: pandas
2.1.1, matplotlib 3.8.0, kafka-python 2.0.2, grpcio and grpcio-tools 1.58.0), not this project's
newer pins, so their programs run with those; grader/course.lock pins every package underneath.

- course_python(progress): the python of a venv at ROOT/.venv-course holding exactly those
  packages. It is built once and reused while the marker file inside it records the sha256 of
  course.lock and course-requirements.txt as they are now (a change to either rebuilds it). One
  build at a time across processes: an fcntl lock on ROOT/.venv-course.lock, so graders and
  pytest-xdist workers calling at once build it once. A locked version that has no wheel for
  this Python gives way to the newest of its major.minor, else to the newest that fits the
  requirements' bounds; each such substitution is one of the notes returned with the python
  (none when everything is exact), and the notes are kept in the marker for later calls.
- course_image(progress): the tag of this project's Docker image built with the course's
  packages instead of ours (the Dockerfile's PYTHON_REQUIREMENTS and PYTHON_CONSTRAINTS build
  arguments), built only when Docker does not have that tag yet.
- environment_problem(stderr): a sentence starting "environment:" when a program died of an
  import that the course image would have satisfied (so not the student's failure), else None.

Whatever cannot be built raises CourseEnvError, whose message says what failed in a sentence.
Standard library only at import time, like tools/harness.py.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools import harness

ROOT = harness.ROOT
IMAGE_REPOSITORY = "p7-autograde-course"
MARKER_NAME = "course-env.json"

BUILD_TIMEOUT = 1800            # one whole venv build: pip downloads ~100 MB, maybe twice
LOCK_WAIT_TIMEOUT = BUILD_TIMEOUT + 120  # another process's build, however it ends
LOCK_POLL_INTERVAL = 0.5
# Wheels only: a version without a wheel for this Python would be compiled from source (numpy,
# grpcio: many minutes, and a compiler), so it counts as not installing here and gives way.
PIP_INSTALL = ("install", "--only-binary=:all:", "--progress-bar", "off")
UNREACHABLE = "Retrying (Retry("  # pip's warning when it cannot reach the index


class CourseEnvError(Exception):
    """The course environment could not be built; the message says what failed and why."""


@dataclass(frozen=True)
class CourseFiles:
    """Where a course environment comes from (its requirements and lock) and where it lives
    (its venv, and the lock file that serialises builds of it)."""

    requirements: Path
    lock: Path
    venv: Path
    build_lock: Path

    def digest(self):
        """sha256 of the lock's bytes, then the requirements' bytes."""
        digest = hashlib.sha256()
        digest.update(self.lock.read_bytes())
        digest.update(self.requirements.read_bytes())
        return digest.hexdigest()

    @property
    def python(self):
        return self.venv / "bin" / "python"

    @property
    def marker(self):
        return self.venv / MARKER_NAME


COURSE = CourseFiles(requirements=ROOT / "grader" / "course-requirements.txt",
                     lock=ROOT / "grader" / "course.lock",
                     venv=ROOT / ".venv-course",
                     build_lock=ROOT / ".venv-course.lock")
IMAGE_BUILD_LOCK = ROOT / ".course-image.lock"


# ---------------------------------------------------------------- requirement files

_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
_BOUND = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*((?:[<>!~]=?|==)[^;#]*)")


def canonical(name):
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path):
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            yield line


def read_pins(path):
    """{canonical name: version} of the file's `name==version` lines, in the file's order."""
    return {canonical(match[1]): match[2] for line in _requirement_lines(path)
            if (match := _PIN.fullmatch(line))}


def read_bounds(path):
    """{canonical name: specifier} of the file's lines that bound a version without pinning
    it exactly (`numpy<2`)."""
    return {canonical(match[1]): match[2].replace(" ", "") for line in _requirement_lines(path)
            if not _PIN.fullmatch(line) and (match := _BOUND.fullmatch(line))}


# ---------------------------------------------------------------- the venv

def course_python(progress=None, files=COURSE):
    """(python, notes): the course venv's interpreter, built first when missing or stale, and
    one sentence per package that is not at its locked version in it ([] when all are).
    progress(sentence), when given, hears one line when a build starts (or waits for another
    process's build). CourseEnvError when the venv cannot be built."""
    digest = files.digest()
    notes = ready_notes(files, digest)
    if notes is None:
        with _exclusive(files.build_lock, progress, f"another process building {files.venv}"):
            notes = ready_notes(files, digest)  # that other process may just have built it
            if notes is None:
                notes = _build_venv(files, digest, progress)
    return files.python, notes


def ready_notes(files, digest):
    """The notes recorded by a complete build for `digest`; None when the venv is missing,
    incomplete, stale (built for other files) or its python no longer runs from there."""
    try:
        marker = json.loads(files.marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("sha256") != digest:
        return None
    if not os.path.exists(files.python):  # follows the symlink to the base interpreter
        return None
    notes = marker.get("notes")
    return list(notes) if isinstance(notes, list) else None


def write_marker(files, digest, notes):
    """Record a complete build, atomically: a reader sees the old state or the new one."""
    temporary = files.marker.with_name(files.marker.name + ".tmp")
    temporary.write_text(json.dumps({"sha256": digest, "notes": notes}, indent=1) + "\n")
    os.replace(temporary, files.marker)


@contextlib.contextmanager
def _exclusive(lock_path, progress, holder):
    """An exclusive fcntl lock on `lock_path` for the block. While another process holds it,
    progress hears once that we wait for `holder`; CourseEnvError after LOCK_WAIT_TIMEOUT."""
    with open(lock_path, "a") as handle:
        deadline = time.monotonic() + LOCK_WAIT_TIMEOUT
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CourseEnvError(f"waited {LOCK_WAIT_TIMEOUT} s for {holder} (it holds "
                                         f"{lock_path}) and gave up") from None
                if progress and not told:
                    progress(f"waiting for {holder}")
                    told = True
                time.sleep(LOCK_POLL_INTERVAL)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_venv(files, digest, progress):
    pins = ", ".join(f"{name} {version}" for name, version in read_pins(files.requirements).items())
    if progress:
        progress(f"building the course's Python environment in {files.venv} once ({pins}); "
                 "a minute or two")
    shutil.rmtree(files.venv, ignore_errors=True)
    deadline = time.monotonic() + BUILD_TIMEOUT
    try:
        created = _run([sys.executable, "-m", "venv", str(files.venv)], deadline, "python -m venv")
        if created.returncode != 0:
            raise CourseEnvError(f"`{sys.executable} -m venv {files.venv}` failed: "
                                 f"{last_error_line(created.stdout + created.stderr)}")
        notes = _install(files, deadline)
        write_marker(files, digest, notes)
    except BaseException:
        shutil.rmtree(files.venv, ignore_errors=True)
        raise
    return notes


def _install(files, deadline):
    """Install the requirements through the lock; when that fails, find the locked versions
    that have no wheel here, put substitutes in their place and install again. The notes."""
    exact = _pip(files.python, [*PIP_INSTALL, "-r", str(files.requirements),
                                "-c", str(files.lock)], deadline)
    if exact.returncode == 0:
        return []
    failure = (f"pip could not install {files.requirements.name} into {files.venv}: "
               f"{last_error_line(exact.stdout + exact.stderr)}")
    if UNREACHABLE in exact.stdout + exact.stderr:  # no version can be had: nothing to swap
        raise CourseEnvError(failure)
    locked = read_pins(files.lock)
    missing = {name: version for name, version in locked.items()
               if available_version(files.python, f"{name}=={version}", deadline) is None}
    if not missing or len(missing) == len(locked):  # not a wheel's absence, or the index's
        raise CourseEnvError(failure)
    bounds = read_bounds(files.requirements)
    substitutes = {name: _substitute(files.python, name, version, bounds.get(name, ""),
                                     deadline)
                   for name, version in missing.items()}
    _install_substituted(files, substitutes, deadline)
    return substitution_notes(locked, installed_versions(files.python, deadline), missing)


def _substitute(python, name, version, bound, deadline):
    for spec in fallback_specs(name, version, bound):
        found = available_version(python, spec, deadline)
        if found is not None:
            return found
    raise CourseEnvError(f"{name} {version} has no wheel for {python}'s Python here, and "
                         f"neither has any other version of it that fits ({bound or 'any'})")


def fallback_specs(name, version, bound=""):
    """What to try, in order, for a locked version that does not install: the newest of its
    major.minor, then the newest that fits the requirements' bound (any, without one)."""
    release = version.split(".")
    specs = [f"{name}=={'.'.join(release[:2])}.*"] if len(release) >= 2 else []
    return specs + [f"{name}{bound}"]


def _install_substituted(files, substitutes, deadline):
    """Install the requirements with the substitutes' versions: through the rest of the lock
    first, and when a substitute needs other versions underneath, through nothing else."""
    with tempfile.TemporaryDirectory(prefix="course-env-") as folder:
        requirements = Path(folder) / "requirements.txt"
        constraints = Path(folder) / "constraints.txt"
        requirements.write_text(substituted_requirements(files.requirements, substitutes))
        constraints.write_text("".join(f"{name}=={version}\n" for name, version
                                       in read_pins(files.lock).items()
                                       if name not in substitutes))
        done = _pip(files.python, [*PIP_INSTALL, "-r", str(requirements),
                                   "-c", str(constraints)], deadline)
        if done.returncode != 0:
            done = _pip(files.python, [*PIP_INSTALL, "-r", str(requirements)], deadline)
        if done.returncode != 0:
            raise CourseEnvError(f"pip could not install {files.requirements.name} into "
                                 f"{files.venv}, even with "
                                 f"{', '.join(f'{n} {v}' for n, v in substitutes.items())} "
                                 f"instead of the locked versions: "
                                 f"{last_error_line(done.stdout + done.stderr)}")


def substituted_requirements(path, substitutes):
    """The requirements file's lines with each substituted package's line (its pin or its
    bound) replaced by `name==substitute`; a substitute for a package underneath is added."""
    lines, seen = [], set()
    for line in _requirement_lines(path):
        match = _BOUND.fullmatch(line)
        name = canonical(match[1]) if match else None
        if name in substitutes:
            line = f"{name}=={substitutes[name]}"
            seen.add(name)
        lines.append(line)
    lines += [f"{name}=={version}" for name, version in substitutes.items() if name not in seen]
    return "".join(line + "\n" for line in lines)


def substitution_notes(locked, installed, missing):
    """One sentence per locked package that the venv does not hold at its locked version: the
    ones without a wheel here first, then those the substitutes moved."""
    moved = {name: version for name, version in locked.items()
             if installed.get(name) != version}
    notes = [f"{name} {version} does not install here: graded with "
             + installed.get(name, "none") for name, version in moved.items() if name in missing]
    for name, version in moved.items():
        if name not in missing:
            now = installed.get(name)
            notes.append(f"{name} {version} is {now} here, as the substitutes need" if now else
                         f"{name} {version} is not installed here: the substitutes do not "
                         "need it")
    return notes


def available_version(python, spec, deadline):
    """The version pip would install for `spec` (wheels only, dependencies aside), None when
    there is none for this Python; pip's dry run asks the index without installing."""
    with tempfile.TemporaryDirectory(prefix="course-env-") as folder:
        report = Path(folder) / "report.json"
        done = _pip(python, [*PIP_INSTALL, "--dry-run", "--no-deps", "--ignore-installed",
                             "--report", str(report), spec], deadline)
        if done.returncode != 0:
            return None
        try:
            (install,) = json.loads(report.read_text())["install"]
            return install["metadata"]["version"]
        except (OSError, ValueError, KeyError, TypeError):
            return None


def installed_versions(python, deadline):
    """{canonical name: version} of what the venv holds."""
    done = _pip(python, ["list", "--format=json"], deadline)
    if done.returncode != 0:
        raise CourseEnvError(f"`pip list` failed in {python}'s venv: "
                             f"{last_error_line(done.stdout + done.stderr)}")
    return {canonical(entry["name"]): entry["version"] for entry in json.loads(done.stdout)}


def _pip(python, args, deadline):
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return _run([str(python), "-m", "pip", *args], deadline, f"pip {args[0]}", env=env)


def _run(argv, deadline, what, env=None):
    remaining = deadline - time.monotonic()
    try:
        if remaining <= 0:
            raise subprocess.TimeoutExpired(argv, 0)
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env=env, timeout=remaining)
    except subprocess.TimeoutExpired:
        raise CourseEnvError(f"building the course environment took over {BUILD_TIMEOUT} s "
                             f"(it was running {what}) and was stopped") from None


def last_error_line(output):
    """pip's last `ERROR:` line that says what went wrong (after a conflict pip ends with a
    pointer to its documentation), or its last line when it printed none."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines
              if line.startswith("ERROR:") and not line.startswith("ERROR: ResolutionImpossible")]
    return (errors or lines or ["(pip printed nothing)"])[-1]


# ---------------------------------------------------------------- the image

def course_image(progress=None, files=COURSE):
    """The tag of the p7 image with the course's packages, p7-autograde-course:HASH (HASH: the
    first 12 hex digits of image_digest: a change to the course files, the Dockerfile or the
    broker's files makes a new tag),
    built from the repository's Dockerfile when Docker does not have it. CourseEnvError, with
    the failing step's lines, when it cannot be built."""
    tag = f"{IMAGE_REPOSITORY}:{image_digest(files)[:12]}"
    if _image_exists(tag):
        return tag
    with _exclusive(IMAGE_BUILD_LOCK, progress, f"another process building the image {tag}"):
        if _image_exists(tag):
            return tag
        if progress:
            progress(f"building the Docker image {tag} once (the p7 image with the course's "
                     "Python packages); a few minutes")
        build_args = {"PYTHON_REQUIREMENTS": files.requirements.relative_to(ROOT).as_posix(),
                      "PYTHON_CONSTRAINTS": files.lock.relative_to(ROOT).as_posix()}
        try:
            harness.build_image(ROOT, tag, build_args=build_args)
        except harness.DockerError as error:
            raise CourseEnvError(f"could not build the course image {tag}: {error}") from None
    return tag


# What else goes into the course image: a change to any of them makes a new tag.
IMAGE_INPUTS = ("Dockerfile", "broker/kafka-version", "broker/pom.xml", "broker/launcher.py",
                "broker/server.properties")


def image_digest(files=None):
    """sha256 of the course files, then of the image's other inputs that exist."""
    digest = hashlib.sha256((files or COURSE).digest().encode())
    for name in IMAGE_INPUTS:
        path = ROOT / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _image_exists(tag):
    try:
        harness.docker("image", "inspect", "--format", "{{.Id}}", tag)
    except harness.DockerError:
        return False
    return True


# ---------------------------------------------------------------- a program's death

# Where a distribution's import names are not its own name with "-" as "_".
IMPORT_NAMES = {
    "kafka-python": ("kafka",),
    "grpcio": ("grpc",),
    "grpcio-tools": ("grpc_tools",),
    "protobuf": ("google.protobuf",),
    "python-dateutil": ("dateutil",),
    "pillow": ("PIL",),
    "fonttools": ("fontTools",),
    "setuptools": ("setuptools", "pkg_resources", "_distutils_hack"),
}

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+')
_IMPORT_ERROR = re.compile(r"^(?:[\w.]+\.)?(?P<kind>ModuleNotFoundError|ImportError): "
                           r"(?P<message>.*)$")
# `python -m MODULE` names its failure on one line of its own, with no traceback.
_RUN_MODULE_ERROR = re.compile(r"Error while finding module specification for '[\w.]+' "
                               r"\((?P<kind>ModuleNotFoundError|ImportError): (?P<message>.*)\)$")
_NO_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")
_INSTALLED = re.compile(r"[/\\](?:site|dist)-packages[/\\](?P<path>.+)$")


def course_modules(lock=COURSE.lock):
    """{import name: (distribution, version)} for every package the course lock pins."""
    modules = {}
    for name, version in read_pins(lock).items():
        for module in IMPORT_NAMES.get(name, (name.replace("-", "_"),)):
            modules[module] = (name, version)
    return modules


def environment_problem(stderr_text, lock=COURSE.lock):
    """A sentence starting with "environment:" when the program died importing something the
    course image has: a module the course lock provides that was missing, or an installed
    course package that failed to import itself. None otherwise: a module the course did not
    have either, or a name the student's own code could not import from a course module,
    is the submission's."""
    modules = course_modules(lock)
    frame = None  # the file of the current traceback's innermost frame
    for line in stderr_text.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            frame = None
        elif match := _FRAME.match(line):
            frame = match["file"]
        elif match := _IMPORT_ERROR.match(line) or _RUN_MODULE_ERROR.search(line):
            verdict = _import_verdict(match["kind"], match["message"], frame, modules)
            if verdict:
                return verdict
            frame = None
    return None


def _import_verdict(kind, message, frame, modules):
    """The sentence for one ImportError (of `kind`) raised in `frame`'s file, or None."""
    error = f"{kind}: {message.strip()}"
    inside = _course_module_of_file(frame, modules)
    missing = _NO_MODULE.search(message) if kind == "ModuleNotFoundError" else None
    if missing:
        provided = _course_module_named(missing["module"], modules)
        if provided:
            return _sentence(provided, "is missing", error, modules)
        # A course package's own submodule missing while it imports itself: it is broken here.
        # Anything else missing (a submodule the student made up, tkinter) the course lacks too.
        owner = _course_module_above(missing["module"], modules)
        return _sentence(owner, "failed to import", error, modules) if inside and owner else None
    return _sentence(inside, "failed to import", error, modules) if inside else None


def _course_module_of_file(path, modules):
    """The course module whose installed files hold `path` (a traceback's innermost frame)."""
    if not path or not (match := _INSTALLED.search(path)):
        return None
    parts = re.split(r"[/\\]", match["path"].removesuffix(".py"))
    return _course_module_above(".".join(parts), modules)


def _course_module_above(dotted, modules):
    """The course module that `dotted` is or lies within (google.protobuf for
    google.protobuf.internal.builder), None when it is none's."""
    parts = dotted.split(".")
    candidates = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
    return next((module for module in candidates if module in modules), None)


def _course_module_named(missing, modules):
    """The course module that `No module named 'MISSING'` is about: that module itself, or a
    namespace above one (`google` above google.protobuf)."""
    if missing in modules:
        return missing
    return next((module for module in modules if module.startswith(missing + ".")), None)


def _sentence(module, what, error, modules):
    distribution, version = modules[module]
    return (f"environment: {module} {what} in the Python the grader ran the program with "
            f"({error}); the course image has it ({distribution} {version}), so this is not "
            f"the submission's failure")
