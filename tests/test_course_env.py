"""The course venv for real (grader/course_env.py): built, or reused, with the course image's
packages at their versions (broker tier: no broker, but the first build downloads ~100 MB and
takes a minute), and the build's fallback and serialisation on small venvs of their own (chaos
tier, like the launcher's Maven fetch: each fetches packages afresh)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader import course_env
from grader.course_env import CourseEnvError, CourseFiles, course_python
from tools.harness import ROOT

pytestmark = pytest.mark.broker

VERSIONS = """
import json, grpc, grpc_tools, kafka, matplotlib, numpy, pandas
from google.protobuf import __version__ as protobuf
from grpc_tools import protoc
from kafka.errors import NoBrokersAvailable
print(json.dumps({"pandas": pandas.__version__, "matplotlib": matplotlib.__version__,
                  "kafka": kafka.__version__, "grpc": grpc.__version__,
                  "numpy": numpy.__version__, "protobuf": protobuf}))
"""

FINDS_MODULES = """
import importlib.util, json, sys
print(json.dumps([name for name in json.loads(sys.argv[1])
                  if importlib.util.find_spec(name) is None]))
"""


def run_python(python, code, *args):
    done = subprocess.run([str(python), "-c", code, *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def course():
    heard = []
    python, notes = course_python(heard.append)
    return python, notes


def test_the_course_venv_has_the_course_images_versions(course):
    python, notes = course
    assert notes == []
    assert python == ROOT / ".venv-course" / "bin" / "python"
    versions = run_python(python, VERSIONS)
    assert {name: versions[name] for name in ("pandas", "matplotlib", "kafka", "grpc")} == {
        "pandas": "2.1.1", "matplotlib": "3.8.0", "kafka": "2.0.2", "grpc": "1.58.0"}
    assert int(versions["numpy"].split(".")[0]) < 2
    assert int(versions["protobuf"].split(".")[0]) < 5


REPORT_PROTO = """syntax = "proto3";
message Report {
  string date = 1;
  double degrees = 2;
}
"""

WHAT_STUDENTS_DO = """
import sys
import matplotlib
import pandas as pd
import matplotlib.pyplot as plt
import report_pb2
report = report_pb2.Report(date="1990-01-01", degrees=-3.5)
assert report_pb2.Report.FromString(report.SerializeToString()) == report
months = pd.Series({"January": -1.5, "February": 2.25, "March": 7.0})
ax = months.plot.bar()
ax.set_ylabel(r"Avg. Max Temperature $^\\circ$C")
plt.tight_layout()
plt.savefig("month.svg")
print("done")
"""


def test_the_course_venv_compiles_the_proto_and_draws_the_plot(course, tmp_path):
    python, _ = course
    (tmp_path / "report.proto").write_text(REPORT_PROTO)
    protoc = subprocess.run([str(python), "-m", "grpc_tools.protoc", f"-I{tmp_path}",
                             f"--python_out={tmp_path}", "report.proto"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert protoc.returncode == 0, protoc.stderr
    program = subprocess.run([str(python), "-c", WHAT_STUDENTS_DO], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"})
    assert (program.returncode, program.stdout, program.stderr) == (0, "done\n", "")
    assert (tmp_path / "month.svg").read_text().lstrip().startswith("<?xml")


def test_every_module_environment_problem_names_is_in_the_course_venv(course):
    python, _ = course
    modules = sorted(course_env.course_modules())
    assert run_python(python, FINDS_MODULES, json.dumps(modules)) == []


def test_the_course_venv_is_reused(course):
    python, _ = course
    heard = []
    assert course_python(heard.append) == (python, [])
    assert heard == []


# ---- small venvs of the tests' own: the fallback and the build lock for real

def small_course(folder, pins):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_text("".join(f"{pin}\n" for pin in pins))
    (folder / "course.lock").write_text("".join(f"{pin}\n" for pin in pins))
    return CourseFiles(requirements=folder / "requirements.txt", lock=folder / "course.lock",
                       venv=folder / "venv", build_lock=folder / "venv.lock")


def installed(python, name):
    done = subprocess.run([str(python), "-m", "pip", "show", name], capture_output=True,
                          text=True, timeout=60)
    return next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
                 if line.startswith("Version:")), None)


@pytest.mark.chaos
def test_a_pin_without_a_release_gives_way_to_its_major_minors_newest(tmp_path):
    files = small_course(tmp_path / "course", ["six==1.16.99", "idna==3.7"])
    python, notes = course_python(files=files)
    assert notes == ["six 1.16.99 does not install here: graded with 1.16.0"]
    assert installed(python, "six") == "1.16.0"
    assert installed(python, "idna") == "3.7"
    assert course_python(files=files) == (python, notes)  # the marker keeps the notes


@pytest.mark.chaos
def test_an_environment_that_cannot_be_built_is_one_sentence(tmp_path):
    files = small_course(tmp_path / "course", ["p7-no-such-package==1.0"])
    with pytest.raises(CourseEnvError) as raised:
        course_python(files=files)
    message = str(raised.value)
    assert message.startswith(f"pip could not install requirements.txt into {files.venv}: "
                              "ERROR: ")
    assert "p7-no-such-package" in message and "\n" not in message
    assert not files.venv.exists()


BUILD_IN_A_PROCESS = """
import json, sys
from pathlib import Path
from grader.course_env import CourseFiles, course_python
folder = Path(sys.argv[1])
files = CourseFiles(folder / "requirements.txt", folder / "course.lock", folder / "venv",
                    folder / "venv.lock")
heard = []
python, notes = course_python(heard.append, files=files)
print(json.dumps({"python": str(python), "notes": notes, "heard": heard}))
"""


@pytest.mark.chaos
def test_processes_at_once_build_the_venv_once(tmp_path):
    files = small_course(tmp_path / "course", ["idna==3.7"])
    processes = [subprocess.Popen([sys.executable, "-c", BUILD_IN_A_PROCESS,
                                   str(tmp_path / "course")], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    heard = [sentence for result in results for sentence in result["heard"]]
    assert len([s for s in heard if s.startswith("building the course's Python")]) == 1, heard
    assert {(result["python"], tuple(result["notes"])) for result in results} == {
        (str(files.python), ())}
    assert installed(Path(results[0]["python"]), "idna") == "3.7"
