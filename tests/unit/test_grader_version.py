"""--version auto: which version of P7 a folder is, from what it holds, read and never run."""

from grader import version
from helpers import FILES
from submissions import mutants


def folder(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_this_projects_files_and_the_plain_draft_submission_are_the_draft():
    for files in (FILES, mutants.PLAIN / "files"):
        graded, why = version.detect(files)
        assert graded == "draft", why
        assert "consumer.py runs rounds" in why


def test_a_final_version_submission_is_told_apart_and_why(tmp_path):
    files = folder(tmp_path, {
        "month.svg": "<svg/>",
        "plot.py": 'plt.savefig("/files/month.svg")\n',
        "consumer.py": "while True:\n    batch = consumer.poll(1000)\n"})
    graded, why = version.detect(files)
    assert graded == "final"
    assert why == "a committed month.svg, plot.py writes month.svg, consumer.py has no rounds"


def test_rounds_alone_do_not_outweigh_the_final_plot(tmp_path):
    files = folder(tmp_path, {
        "plot.py": 'plt.savefig("files/month.svg")\n',
        "consumer.py": "threading.Thread(target=consume, args=([0, 1], 30))\n",
        "month.svg": "<svg/>"})
    graded, why = version.detect(files)
    assert graded == "final"
    assert "against it: consumer.py runs rounds" in why


def test_a_folder_with_no_evidence_is_the_final_version(tmp_path):
    graded, why = version.detect(tmp_path)
    assert graded == "final"
    assert "nothing that tells the versions apart" in why
