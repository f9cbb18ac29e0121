"""The grading copy follows no link: links within the submission stay links within the copy;
links out of it, dangling ones and loops, FIFOs and oversized folders are refused in a sentence,
and the checks that read the submitted folder read no host file through a link either."""

import os
import time

import pytest

from grader import submission, version
from grader.submission import SubmissionTooLarge, copy_sources, inside

SECRET = "root:secret-of-the-host\n"


@pytest.fixture
def host(tmp_path):
    """A host file and a host folder outside the submission."""
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "shadow").write_text(SECRET)
    (outside / "folder").mkdir()
    (outside / "folder" / "data.txt").write_text(SECRET)
    return outside


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "sub" / "files"
    folder.mkdir(parents=True)
    (folder / "producer.py").write_text("print('producer')\n")
    (folder / "lib").mkdir()
    (folder / "lib" / "util.py").write_text("X = 1\n")
    return folder


def copied(files, tmp_path):
    copy = tmp_path / "work" / "files"
    return copy, copy_sources(files, copy)


def test_a_link_within_the_submission_is_kept_and_points_within_the_copy(files, tmp_path):
    (files / "util.py").symlink_to(files / "lib" / "util.py")        # absolute, inside
    (files / "lib" / "producer.py").symlink_to("../producer.py")     # relative, inside
    (files / "modules").symlink_to("lib")                            # a folder, inside
    copy, notes = copied(files, tmp_path)
    assert notes == []
    for name, target in (("util.py", "lib/util.py"), ("lib/producer.py", "producer.py"),
                         ("modules", "lib")):
        link = copy / name
        assert link.is_symlink(), name
        assert not os.path.isabs(os.readlink(link)), name
        assert os.path.realpath(link) == os.path.realpath(copy / target), name
    assert (copy / "util.py").read_text() == "X = 1\n"
    assert (copy / "modules" / "util.py").read_text() == "X = 1\n"


def test_a_link_to_a_host_file_is_refused_in_a_sentence_and_not_copied(files, host, tmp_path):
    (files / "secret").symlink_to(host / "shadow")
    copy, notes = copied(files, tmp_path)
    assert notes == [(f"files/secret -> {host / 'shadow'} points outside the submission: "
                      "not copied")]
    assert not os.path.lexists(copy / "secret")
    assert not any(SECRET in path.read_text() for path in copy.rglob("*") if path.is_file())
    assert (copy / "producer.py").is_file()


def test_a_link_to_a_host_folder_is_refused(files, host, tmp_path):
    (files / "lib" / "data").symlink_to(host / "folder")
    copy, notes = copied(files, tmp_path)
    assert notes == [(f"files/lib/data -> {host / 'folder'} points outside the submission: "
                      "not copied")]
    assert not os.path.lexists(copy / "lib" / "data")


def test_a_relative_link_that_climbs_out_is_refused(files, host, tmp_path):
    (files / "up").symlink_to("../../host/shadow")
    copy, notes = copied(files, tmp_path)
    assert len(notes) == 1 and "points outside the submission" in notes[0]
    assert not os.path.lexists(copy / "up")


def test_a_loop_is_refused_quickly_in_one_short_sentence(files, tmp_path):
    (files / "loop").symlink_to(".")
    (files / "lib" / "up").symlink_to("..")
    (files / "a").symlink_to("b")
    (files / "b").symlink_to("a")
    started = time.monotonic()
    copy, notes = copied(files, tmp_path)
    assert time.monotonic() - started < 2
    assert notes == ["files/a -> b is a loop of links: not copied",
                     "files/b -> a is a loop of links: not copied",
                     "files/loop -> . points at a folder that holds it, a loop: not copied",
                     "files/lib/up -> .. points at a folder that holds it, a loop: not copied"]
    assert all(len(note) < 120 for note in notes)
    assert not any(os.path.lexists(copy / name) for name in ("loop", "lib/up", "a", "b"))
    assert (copy / "lib" / "util.py").is_file()


def test_a_dangling_link_is_refused(files, tmp_path):
    (files / "gone.py").symlink_to("nowhere.py")
    copy, notes = copied(files, tmp_path)
    assert notes == ["files/gone.py -> nowhere.py points at nothing: not copied"]
    assert not os.path.lexists(copy / "gone.py")


def test_a_fifo_is_not_copied_and_does_not_block(files, tmp_path):
    os.mkfifo(files / "pipe")
    copy, notes = copied(files, tmp_path)
    assert notes == ["files/pipe is a FIFO (a named pipe), not a file: not copied"]
    assert not os.path.lexists(copy / "pipe")
    assert not inside(files, files / "pipe")


def test_many_refusals_are_summed_up(files, tmp_path):
    for n in range(25):
        (files / f"gone{n:02}").symlink_to(f"nowhere{n}")
    _, notes = copied(files, tmp_path)
    assert len(notes) == submission.MAX_REFUSALS
    assert notes[-1] == "16 more links or special files are not copied"


def disk_use(folder):
    return sum(os.lstat(os.path.join(top, name)).st_blocks * 512
               for top, dirs, names in os.walk(folder) for name in dirs + names)


def test_a_sparse_gigabyte_is_refused_without_being_written(files, tmp_path):
    with open(files / "lib" / "huge.bin", "wb") as handle:
        os.truncate(handle.fileno(), 1 << 30)
    started = time.monotonic()
    with pytest.raises(SubmissionTooLarge) as refused:
        copied(files, tmp_path)
    assert time.monotonic() - started < 5
    text = str(refused.value)
    assert text.startswith("files/ holds more than 200 MB: files/lib/huge.bin (1074 MB")
    assert "\n" not in text and text.endswith("not graded")
    assert disk_use(tmp_path / "work") < 1_000_000


def test_the_limit_counts_the_files_added_up(files, tmp_path):
    for name in ("a.bin", "b.bin"):
        with open(files / name, "wb") as handle:
            os.truncate(handle.fileno(), 600)
    with pytest.raises(SubmissionTooLarge, match="files/b.bin"):
        copy_sources(files, tmp_path / "copy", limit=1000)
    copy_sources(files, tmp_path / "copy", limit=2000)   # under it: copied
    assert (tmp_path / "copy" / "b.bin").stat().st_size == 600


def test_outputs_are_left_out_at_any_depth(files, tmp_path):
    for name in ("partition-0.json", "lib/partition-1.json.tmp", "lib/__pycache__/x.pyc",
                 "yearly_trends.png", "lib/deep/birthday.json", "lib/deep/keep.json"):
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        (files / name).write_text("{}")
    copy, notes = copied(files, tmp_path)
    assert notes == []
    kept = sorted(str(path.relative_to(copy)) for path in copy.rglob("*") if path.is_file())
    assert kept == ["lib/deep/keep.json", "lib/util.py", "producer.py"]


def test_prepare_puts_the_refusals_in_its_notes(files, host, tmp_path):
    (files / "secret").symlink_to(host / "shadow")
    (files / "weather.py").write_text("raise SystemExit('no')\n")
    notes = submission.prepare(files, tmp_path / "copy")
    assert notes[0] == (f"files/secret -> {host / 'shadow'} points outside the submission: "
                        "not copied")


def test_inside_tells_what_the_checks_may_read(files, host):
    (files / "month.svg").symlink_to(host / "shadow")
    (files / "own.py").symlink_to("producer.py")
    assert inside(files, files / "producer.py") and inside(files, files / "own.py")
    assert not inside(files, files / "month.svg")
    assert not inside(files, files / "lib")              # a folder
    assert not inside(files, files / "missing.py")


def test_version_reads_no_host_file_through_a_link(files, host):
    (host / "writes_month.py").write_text("plt.savefig('month.svg')\n")
    (files / "plot.py").symlink_to(host / "writes_month.py")
    (files / "month.svg").symlink_to(host / "shadow")
    (files / "consumer.py").write_text("def consume(partition_nums, max_iterations): pass\n")
    found, because = version.detect(files)
    assert found == "draft", because
    assert "month.svg" not in because
    (files / "month.svg").unlink()
    (files / "month.svg").write_text("<svg/>")          # committed in the submission: counted
    assert "a committed month.svg" in version.detect(files)[1]


def test_a_too_large_submission_fails_setup_with_the_sentence(files, monkeypatch):
    from grader.session import Session
    monkeypatch.setattr(submission.copy_sources, "__defaults__", (1_000_000,))
    (files / "big.bin").write_bytes(b"x" * 2_000_000)
    session = Session(files, environment="project")
    try:
        session.setup()
        assert session.setup_error.startswith("files/ holds more than 1 MB: files/big.bin (2 MB")
        assert session.admin is None        # no broker was asked for
    finally:
        session.cleanup()
