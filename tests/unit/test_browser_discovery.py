"""tests/browser.py finds Chromium or Chrome under its usual names on PATH and, without one,
fails the test in CI and skips it elsewhere, saying in one sentence how to install one."""

import os

import pytest

from tests import browser


def fake_browser(folder, name):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("name", browser.BROWSER_NAMES)
def test_each_usual_name_is_found_on_path(tmp_path, name):
    found = browser.find_browser(path=str(fake_browser(tmp_path / "bin", name).parent))
    assert found == str(tmp_path / "bin" / name)


def test_the_first_name_wins_and_path_order_is_kept(tmp_path):
    fake_browser(tmp_path / "a", "google-chrome")
    fake_browser(tmp_path / "b", "google-chrome")
    fake_browser(tmp_path / "b", "chromium")
    path = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    assert browser.find_browser(path=path) == str(tmp_path / "b" / "chromium")
    (tmp_path / "b" / "chromium").unlink()
    assert browser.find_browser(path=path) == str(tmp_path / "a" / "google-chrome")


def test_a_file_that_is_not_executable_is_not_a_browser(tmp_path, monkeypatch):
    fake_browser(tmp_path, "chromium").chmod(0o644)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        browser.find_browser(path=str(tmp_path))


def test_none_fails_in_ci_with_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failure:
        browser.find_browser(path=str(tmp_path))
    message = str(failure.value)
    assert "\n" not in message and "apt-get install chromium" in message


def test_none_is_a_skip_outside_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skip:
        browser.find_browser(path=str(tmp_path))
    assert "no Chromium or Chrome on PATH" in str(skip.value)
