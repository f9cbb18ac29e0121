"""broker/launcher.py's reading of its environment, no broker and no JVM needed: KAFKA_BOOTSTRAP
gives the single broker's port only as localhost:PORT or 127.0.0.1:PORT, and only to the
commands that need a port and were given none; a KAFKA_* value that is not UTF-8 text is
refused; JVM options with which Java exits at once are told in one sentence (here from Java's
output, and from a stand-in `java`; tests/test_launcher_jvm_options.py runs the real one).
Bad input is one sentence and exit code 2, with nothing written."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from broker import launcher
from helpers import assert_one_clean_sentence
from tools.harness import LAUNCHER, free_port

BAD_BOOTSTRAPS = [
    ("localhost:9092\n", "it ends with a line break"),
    ("localhost:9092 ", "it ends with a space"),
    (" localhost:9092", "it starts with a space"),
    ("\tlocalhost:9092", "it starts with a tab"),
    ("localhost:9092,localhost:9093", "it is a list of brokers, and the launcher starts one"),
    ("localhost:9092,", "it is a list of brokers"),
    ("[::1]:9092", "it is an IPv6 address, and the broker listens on 127.0.0.1"),
    ("::1", "it is an IPv6 address"),
    ("kafka1:19092", "it names the host 'kafka1', and the launcher starts a broker on this "
                     "machine only"),
    ("127.0.0.2:9092", "it names the host '127.0.0.2'"),
    ("localhost", "it names no port"),
    (":9092", "it names no host"),
    ("localhost:", "its port '' is not a number"),
    ("localhost:x92", "its port 'x92' is not a number"),
    ("localhost:+9092", "its port '+9092' is not a number"),
    ("localhost:\uff19\uff10\uff19\uff12",  # full-width digits
     "its port '\uff19\uff10\uff19\uff12' is not a number"),
    ("localhost:0", "its port 0 is not between 1 and 65535"),
    ("localhost:65536", "its port 65536 is not between 1 and 65535"),
]


def launcher_run(*args, env):
    """broker/launcher.py ARGS with exactly `env` (bytes allowed, as an environment holds)."""
    return subprocess.run([sys.executable, str(LAUNCHER), *map(str, args)], env=env,
                          capture_output=True, text=True, errors="replace", timeout=60)


def clean_env(**variables):
    """Ours without any KAFKA_* or P7_* variable, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "P7_"))}
    env.update(variables)
    return env


def assert_bad_input(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    line = assert_one_clean_sentence(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in line, line
    return line


# ---------------------------------------------------------------- KAFKA_BOOTSTRAP's port

@pytest.mark.parametrize("value, port", [
    (None, 9092), ("", 9092), ("localhost:9092", 9092), ("localhost:9871", 9871),
    ("127.0.0.1:9871", 9871), ("LOCALHOST:9871", 9871), ("LocalHost:1", 1),
    ("localhost:65535", 65535),
])
def test_a_bootstrap_on_this_machine_gives_its_port(value, port):
    assert launcher.bootstrap_port(value) == port


@pytest.mark.parametrize("value, problem", BAD_BOOTSTRAPS)
def test_a_bootstrap_the_launcher_cannot_serve_is_one_sentence(value, problem):
    with pytest.raises(launcher.BadInput) as refused:
        launcher.bootstrap_port(value)
    sentence = str(refused.value)
    assert sentence.startswith(f"KAFKA_BOOTSTRAP is {value!r}: {problem}")
    assert "give localhost:PORT (like localhost:9092)" in sentence and "--port" in sentence
    assert "\n" not in sentence


@pytest.mark.parametrize("command", [["start"], ["status"], ["stop"]])
@pytest.mark.parametrize("value, problem", [BAD_BOOTSTRAPS[0], BAD_BOOTSTRAPS[4],
                                            BAD_BOOTSTRAPS[6], BAD_BOOTSTRAPS[8],
                                            BAD_BOOTSTRAPS[16]])
def test_each_command_that_needs_the_port_refuses_it_and_writes_nothing(tmp_path, command,
                                                                        value, problem):
    """stop and status look for the port's folder (broker/.run-PORT) when given none."""
    state = tmp_path / "state"
    args = (["--state-dir", state] if command == ["start"] else []) + command
    result = launcher_run(*args, env=clean_env(KAFKA_BOOTSTRAP=value))
    assert_bad_input(result, f"KAFKA_BOOTSTRAP is {value!r}: {problem}")
    assert not state.exists()


def test_an_explicit_port_or_folder_needs_no_bootstrap(monkeypatch, tmp_path):
    """--port (and for start P7_PORT) wins over KAFKA_BOOTSTRAP, which is then not read: a
    compose node's KAFKA_BOOTSTRAP names the cluster's hosts, for its programs."""
    monkeypatch.delenv("P7_BROKER_STATE", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka1:19092,kafka2:19092,kafka3:19092")
    args = launcher.parse_args(["start", "--port", "9871"])
    assert args.port == 9871 and args.state_dir == launcher.BROKER_DIR / ".run-9871"
    monkeypatch.setenv("P7_PORT", "9872")
    assert launcher.parse_args(["start"]).port == 9872
    monkeypatch.delenv("P7_PORT")
    assert launcher.parse_args(["status", "--port", "9871"]).port == 9871
    assert launcher.parse_args(["stop", "--port", "9871"]).state_dir \
        == launcher.BROKER_DIR / ".run-9871"
    assert Path(launcher.parse_args(["--state-dir", str(tmp_path), "stop"]).state_dir) \
        == tmp_path
    monkeypatch.setenv("P7_BROKER_STATE", str(tmp_path))
    assert launcher.parse_args(["stop"]).state_dir == tmp_path
    with pytest.raises(launcher.BadInput, match="it is a list of brokers"):
        launcher.parse_args(["start"])


def test_the_bootstrap_port_picks_the_folder(monkeypatch):
    monkeypatch.delenv("P7_BROKER_STATE", raising=False)
    monkeypatch.delenv("P7_PORT", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "LOCALHOST:9871")
    args = launcher.parse_args(["start"])
    assert args.port == 9871 and args.state_dir == launcher.BROKER_DIR / ".run-9871"
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "")
    args = launcher.parse_args(["stop"])
    assert args.port == 9092 and args.state_dir == launcher.BROKER_DIR / ".run"


@pytest.mark.parametrize("args, code", [(["cluster-status"], (0, 1)), (["cluster-stop"], (0,))])
def test_commands_without_a_port_ignore_the_bootstrap(tmp_path, args, code):
    result = launcher_run("--state-dir", tmp_path / "cluster", *args,
                          env=clean_env(KAFKA_BOOTSTRAP="localhost:9092\n"))
    assert result.returncode in code, result.stderr
    assert "KAFKA_BOOTSTRAP" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cluster").exists()


def test_fetch_ignores_the_bootstrap(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "[::1]:9092")
    assert launcher.parse_args(["fetch"]).command == "fetch"
    assert launcher.parse_args(["cluster", "--ports", "9192,9193,9194"]).command == "cluster"


@pytest.mark.parametrize("option", ["--port", "--controller-port"])
@pytest.mark.parametrize("value", ["0", "65536", "9o92", "-1"])
def test_a_port_option_out_of_range_is_refused(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        launcher.parse_args(["start", f"{option}={value}"])
    assert exit_info.value.code == 2
    assert f"argument {option}: '{value}' is not a port (1 to 65535)" in capsys.readouterr().err


# ---------------------------------------------------------------- the tools' bootstrap

class Executed(Exception):
    """os.execv, caught: the command it was given."""


@pytest.fixture
def tool_command(monkeypatch):
    """tool_command(*argv): the command `launcher.py tool ARGV` would run, nothing run."""
    monkeypatch.setattr(launcher, "java_command", lambda: "/bin/java")
    monkeypatch.setattr(launcher, "classpath", lambda: "/jars/*")

    def execv(path, command):
        raise Executed(command)

    monkeypatch.setattr(launcher.os, "execv", execv)

    def run(*argv):
        with pytest.raises(Executed) as executed:
            launcher.run_tool(list(argv))
        return executed.value.args[0]

    return run


@pytest.mark.parametrize("value, given", [
    (None, "localhost:9092"), ("", "localhost:9092"), ("localhost:9871", "localhost:9871"),
    ("kafka1:19092,kafka2:19092,kafka3:19092", "kafka1:19092,kafka2:19092,kafka3:19092"),
    ("localhost:9192, localhost:9193", "localhost:9192, localhost:9193"),
])
def test_a_tool_goes_to_any_bootstrap_a_client_can_use(monkeypatch, tool_command, value, given):
    if value is None:
        monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)
    else:
        monkeypatch.setenv("KAFKA_BOOTSTRAP", value)
    command = tool_command("kafka-topics", "--list")
    assert command[-4:] == [launcher.TOOLS["kafka-topics"], "--bootstrap-server", given, "--list"]


def test_a_tool_with_its_own_address_ignores_the_bootstrap(monkeypatch, tool_command):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "localhost:9092\n")
    command = tool_command("kafka-topics", "--bootstrap-server=localhost:9871", "--list")
    assert command[-2:] == ["--bootstrap-server=localhost:9871", "--list"]
    assert "localhost:9092\n" not in command


@pytest.mark.parametrize("value, problem", [
    ("localhost:9092\n", "it ends with a line break"),
    ("localhost:9092,", "'' is not HOST:PORT with a port between 1 and 65535"),
    ("localhost:9092,kafka1", "'kafka1' is not HOST:PORT"),
    ("localhost:99999", "'localhost:99999' is not HOST:PORT"),
])
def test_a_tool_refuses_a_bootstrap_no_client_can_use(value, problem):
    result = launcher_run("tool", "kafka-topics", "--list", env=clean_env(KAFKA_BOOTSTRAP=value))
    assert_bad_input(result, f"KAFKA_BOOTSTRAP is {value!r}: {problem}",
                     "give HOST:PORT[,HOST:PORT...]")


# ---------------------------------------------------------------- KAFKA_* values not UTF-8

@pytest.mark.parametrize("args, variable, value", [
    (["status"], "KAFKA_BOOTSTRAP", b"localhost:90\xff92"),
    (["start", "--port", "PORT"], "KAFKA_LOG_RETENTION_HOURS", b"1\xff"),
    (["start", "--port", "PORT"], "KAFKA_OPTS", b"-Dp7.name=\xe9t\xe9"),
    (["start", "--port", "PORT"], "KAFKA_HEAP_OPTS", b"-Xmx\xff"),
    (["start", "--port", "PORT"], "KAFKA_HOME", b"/opt/k\xfffka"),
    (["cluster"], "KAFKA_OPTS", b"\xfe"),
    (["fetch"], "KAFKA_HOME", b"/opt/k\xfffka"),
    (["tool", "kafka-topics", "--list"], "KAFKA_HEAP_OPTS", b"-Xmx\xff"),
    (["tool", "kafka-topics", "--list"], "KAFKA_BOOTSTRAP", b"localhost:90\xff92"),
])
def test_a_value_that_is_not_utf8_is_one_sentence_naming_it(tmp_path, args, variable, value):
    state = tmp_path / "state"
    args = [str(free_port()) if arg == "PORT" else arg for arg in args]
    if args[0] != "tool":  # everything after `tool` is the tool's
        args = ["--state-dir", state, *args]
    result = launcher_run(*args, env=clean_env(**{variable: value}))
    assert_bad_input(result, f"{variable} is not UTF-8 text ({value!r})")
    assert not state.exists()


def test_a_variable_name_that_is_not_utf8_is_one_sentence(tmp_path):
    env = clean_env()
    env[b"KAFKA_LOG_\xffHOURS"] = b"1"
    result = launcher_run("--state-dir", tmp_path / "state", "start", "--port", free_port(),
                          env=env)
    assert_bad_input(result, "the name of the variable b'KAFKA_LOG_\\xffHOURS' is not UTF-8")
    assert not (tmp_path / "state").exists()


def test_variables_a_command_does_not_read_may_hold_any_bytes(tmp_path):
    """KAFKA_JMX_OPTS is left alone, and cluster-status reads no KAFKA_* variable."""
    env = clean_env(KAFKA_JMX_OPTS=b"\xff", KAFKA_OPTS=b"\xff", KAFKA_BOOTSTRAP=b"\xff")
    result = launcher_run("--state-dir", tmp_path / "cluster", "cluster-status", env=env)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert "not UTF-8" not in result.stderr


# ---------------------------------------------------------------- Java exits at once

VERSION = ('openjdk version "17.0.15" 2025-04-15\n'
           "OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n"
           "OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)\n")
VM_REFUSED = ("Unrecognized VM option 'Bogus'\nError: Could not create the Java Virtual Machine.\n"
              "Error: A fatal exception has occurred. Program will exit.\n")
NO_MAIN_CLASS = ("Error: Could not find or load main class foo\n"
                 "Caused by: java.lang.ClassNotFoundException: foo\n")


@pytest.mark.parametrize("options, output, sentence", [
    ("-version", VERSION,
     "Java exited at once with KAFKA_OPTS='-version' instead of running Kafka (its last line: "
     "OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)): fix or "
     "unset KAFKA_OPTS"),
    ("--dry-run", "",
     "Java exited at once with KAFKA_OPTS='--dry-run' instead of running Kafka (it printed "
     "nothing): fix or unset KAFKA_OPTS"),
    ("foo", NO_MAIN_CLASS,
     "Java exited at once with KAFKA_OPTS='foo' instead of running Kafka (its last line: Caused "
     "by: java.lang.ClassNotFoundException: foo): fix or unset KAFKA_OPTS"),
    ("-XX:+Bogus", VM_REFUSED, "Java refuses KAFKA_OPTS='-XX:+Bogus': Unrecognized VM option "
                               "'Bogus'"),
    ("-Dp7.ok=1", "Found problem:\n  /state/data is not formatted.\n\n", None),
    ("-Dp7.ok=1", "Found log directory:\n  /state/data\n\nFound metadata: {cluster.id=x}\n", None),
])
def test_java_exiting_at_once_is_one_sentence(monkeypatch, options, output, sentence):
    monkeypatch.delenv("KAFKA_HEAP_OPTS", raising=False)
    monkeypatch.setenv("KAFKA_OPTS", options)
    assert launcher.refused_setting(output, {}, launcher.jvm_variables()) == sentence


def test_both_jvm_variables_are_named(monkeypatch):
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "-Xmx300m")
    monkeypatch.setenv("KAFKA_OPTS", "-help")
    sentence = launcher.refused_setting("Usage: java [options] <mainclass> [args...]\n", {},
                                        launcher.jvm_variables())
    assert sentence.startswith("Java exited at once with KAFKA_HEAP_OPTS='-Xmx300m', "
                               "KAFKA_OPTS='-help' instead of running Kafka")
    assert sentence.endswith("fix or unset KAFKA_HEAP_OPTS and KAFKA_OPTS")


def test_without_jvm_options_kafkas_silence_is_no_refusal():
    assert launcher.refused_setting(VERSION, {}, []) is None


@pytest.fixture
def stand_in_java(monkeypatch, tmp_path):
    """stand_in_java(script): a `java` on PATH that answers -version as Java 17 and otherwise
    runs the shell `script`; returns a State in tmp_path."""
    def install(script):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        java = bin_dir / "java"
        java.write_text("#!/bin/sh\n"
                        "if [ \"$1\" = -version ]; then echo 'openjdk version \"17.0.15\"' >&2; "
                        f"exit 0; fi\n{script}\n")
        java.chmod(0o755)
        monkeypatch.delenv("JAVA_HOME", raising=False)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return launcher.State(tmp_path / "state")
    return install


def test_the_check_before_the_start_tells_java_exiting_at_once(monkeypatch, stand_in_java):
    state = stand_in_java("echo 'OpenJDK 64-Bit Server VM (build 17)' >&2\nexit 0")
    monkeypatch.setenv("KAFKA_OPTS", "-version")
    with pytest.raises(launcher.LauncherError) as refused:
        launcher.check_settings("/jars/*", state)
    assert str(refused.value) == (
        "Java exited at once with KAFKA_OPTS='-version' instead of running Kafka (its last "
        "line: OpenJDK 64-Bit Server VM (build 17)): fix or unset KAFKA_OPTS")


def test_the_check_before_the_start_passes_when_kafka_ran(monkeypatch, stand_in_java):
    state = stand_in_java("printf 'Found problem:\\n  /data is not formatted.\\n'\nexit 1")
    monkeypatch.setenv("KAFKA_OPTS", "-Dp7.ok=1")
    launcher.check_settings("/jars/*", state)


def test_the_check_before_the_start_has_a_deadline(monkeypatch, stand_in_java):
    state = stand_in_java("exec sleep 60")
    monkeypatch.setenv("KAFKA_OPTS", "-agentlib:jdwp=transport=dt_socket,server=y,suspend=y")
    with pytest.raises(launcher.LauncherError) as refused:
        launcher.check_settings("/jars/*", state, timeout=1)
    assert str(refused.value).startswith("Java did not finish reading the broker's settings "
                                         "within 1 s with KAFKA_OPTS='-agentlib:jdwp=")


# ---------------------------------------------------------------- a broker that exits at start

def exited_broker(state, output, server_log=""):
    """A broker process that exited at once (code 0) after writing `output` to its console log
    (and `server_log` to its log), after an earlier start's lines."""
    state.logs.mkdir(parents=True, exist_ok=True)
    state.console_log.write_text("line of an earlier start\n")
    state.server_log.write_text("[earlier] INFO Kafka started\n")
    offsets = launcher.log_offsets(state)
    with open(state.console_log, "a") as console:
        console.write(output)
    with open(state.server_log, "a") as log:
        log.write(server_log)
    state.pid_file.write_text("999999\n")
    return types.SimpleNamespace(pid=999999, returncode=0, poll=lambda: 0, log_offsets=offsets)


def test_a_broker_java_ended_at_once_is_one_sentence(monkeypatch, tmp_path):
    monkeypatch.delenv("KAFKA_HEAP_OPTS", raising=False)
    monkeypatch.setenv("KAFKA_OPTS", "-version")
    state = launcher.State(tmp_path)
    process = exited_broker(state, VERSION)
    with pytest.raises(launcher.LauncherError) as refused:
        launcher.wait_until_ready(state, process, free_port(), timeout=30)
    assert str(refused.value) == (
        "Java exited at once (code 0) with KAFKA_OPTS='-version' instead of running Kafka (its "
        "last line: OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, "
        "sharing)): fix or unset KAFKA_OPTS")
    assert not state.pid_file.exists()


def test_a_broker_that_ran_and_exited_shows_only_its_own_lines(monkeypatch, tmp_path):
    monkeypatch.setenv("KAFKA_OPTS", "-Dp7.ok=1")
    state = launcher.State(tmp_path)
    process = exited_broker(state, "", server_log="[now] ERROR Exiting Kafka\n")
    error = launcher.startup_exit(state, process, "the broker on port 9871")
    assert str(error) == (f"the broker on port 9871 exited during startup (code 0). Last lines "
                          f"of {state.server_log}:\n[now] ERROR Exiting Kafka")


def test_without_jvm_options_an_exit_shows_the_console_of_this_start(monkeypatch, tmp_path):
    monkeypatch.delenv("KAFKA_HEAP_OPTS", raising=False)
    monkeypatch.delenv("KAFKA_OPTS", raising=False)
    state = launcher.State(tmp_path)
    process = exited_broker(state, "Error: something\n")
    error = str(launcher.startup_exit(state, process, "the broker on port 9871"))
    assert error.endswith(f"Last lines of {state.console_log}:\nError: something")
    assert "earlier" not in error
