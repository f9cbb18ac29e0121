"""tools/harness.py's output_limit with real processes and no broker: a program that prints
far more than the limit runs to its end, and its log keeps the exact first and last half of
what it printed with a line counting the bytes cut between them; the log shows the head while
the program runs; a daemon it leaves holding the pipe delays neither wait() nor the head; bytes
that are not UTF-8 stay as they were. Without a limit the log files are the program's stdout
and stderr themselves, as before."""

import os
import random
import signal
import sys
import textwrap
import time

import pytest

from grader import sandbox
from tools import harness
from tools.harness import Program, wait_until

KiB = 1024
MiB = 1024 * KiB
TEST_SLOT = 902     # not test_sandbox.py's 901: its sweeps must not reach these programs


def script(folder, name, code):
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


def noise(size):
    """What LOUD prints on stdout: `size` bytes that differ from place to place (a byte out of
    place in a log shows), not UTF-8, the same in every process."""
    return random.Random(7).randbytes(size)


LOUD = """
    import random, sys
    sys.stdout.buffer.write(random.Random(7).randbytes(int(sys.argv[1])))
    sys.stderr.buffer.write(b"e" * (3 * 1024 * 1024) + b"\\nlast words on stderr\\n")
"""


def test_a_program_printing_40_mib_runs_to_its_end_and_its_log_keeps_head_and_tail(tmp_path):
    program = Program(script(tmp_path, "loud.py", LOUD), [40 * MiB], tmp_path,
                      output_limit=1 * MiB)
    assert program.wait(timeout=30) == 0    # exited by itself, neither killed nor stopped

    printed, half = noise(40 * MiB), 512 * KiB
    log = program.stdout_path.read_bytes()
    assert log[:half] == printed[:half]
    assert log[-half:] == printed[-half:]
    # The head does not end a line, so the notice starts a line of its own.
    assert printed[half - 1] != ord("\n")
    assert log[half:-half] == (f"\n[... {40 * MiB - 2 * half} bytes cut: the grader keeps the "
                               f"first and last 512 KiB of a program's output ...]\n").encode()

    errors = program.stderr_path.read_bytes()
    assert errors.startswith(b"e" * half)
    assert errors.endswith(b"e" * (half - 22) + b"\nlast words on stderr\n")
    assert len(errors) < 1 * MiB + 200
    assert program.tail(1) == "last words on stderr"


def test_without_a_limit_the_log_files_are_the_programs_own_output(tmp_path):
    program = Program(script(tmp_path, "plain.py", """
        import os, sys
        print(os.readlink("/proc/self/fd/1"))
        print(os.readlink("/proc/self/fd/2"), file=sys.stderr)
        sys.stdout.write("x" * (3 * 1024 * 1024))
    """), [], tmp_path)
    assert program.wait(timeout=30) == 0
    first_line, rest = program.stdout.split("\n", 1)
    assert first_line == str(program.stdout_path.resolve())
    assert program.stderr.strip() == str(program.stderr_path.resolve())
    assert rest == "x" * (3 * MiB)     # all of it: no limit, no cut


def test_with_a_limit_the_program_writes_into_pipes(tmp_path):
    program = Program(script(tmp_path, "piped.py", """
        import os, sys
        print(os.readlink("/proc/self/fd/1"))
        print(os.readlink("/proc/self/fd/2"), file=sys.stderr)
    """), [], tmp_path, output_limit=1 * MiB)
    assert program.wait(timeout=30) == 0
    assert program.stdout.startswith("pipe:")
    assert program.stderr.startswith("pipe:")


def test_the_log_shows_the_output_so_far_while_the_program_runs(tmp_path):
    program = Program(script(tmp_path, "chatty.py", """
        import time
        print("ready", flush=True)
        time.sleep(60)
    """), [], tmp_path, output_limit=1 * MiB)
    try:
        wait_until(lambda: "ready" in program.stdout, 10, "the first line in the log")
        assert program.running()
    finally:
        program.kill()
    assert not program.running()
    assert program.stdout == "ready\n"


DAEMONIZING = """
    import os, sys, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:              # the daemon: keeps stdout and stderr open, and sleeps
            with open(sys.argv[1] + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(sys.argv[1] + ".tmp", sys.argv[1])
            time.sleep(30)
        os._exit(0)
    os.wait()
    sys.stdout.write("a" * 2000 + "\\nthe program is done\\n")
"""


@pytest.fixture
def daemon_pid_file(tmp_path):
    """Where the daemon writes its pid; the daemon is killed after the test, whatever
    happened in it."""
    path = tmp_path / "daemon.pid"
    yield path
    if path.exists():
        try:
            os.kill(int(path.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_daemon_holding_the_pipe_delays_neither_wait_nor_the_head(tmp_path, daemon_pid_file):
    program = Program(script(tmp_path, "daemonizing.py", DAEMONIZING), [daemon_pid_file],
                      tmp_path, output_limit=1 * KiB)
    started = time.monotonic()
    assert program.wait(timeout=30) == 0
    assert time.monotonic() - started < harness.OUTPUT_DRAIN_TIMEOUT + 2
    wait_until(daemon_pid_file.exists, 10, "the daemon's pid file")
    daemon = int(daemon_pid_file.read_text())
    os.kill(daemon, 0)                  # the daemon still runs, holding the pipe
    assert program.stdout == "a" * 512  # the head; the tail comes at end of stream

    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: program.stdout.endswith("the program is done\n"), 10,
               "the tail once the daemon is gone")
    cut = 2000 + len("\nthe program is done\n") - 1024
    assert program.stdout == ("a" * 512 + f"\n[... {cut} bytes cut: the grader keeps the first "
                              "and last 512 bytes of a program's output ...]\n"
                              + "a" * (512 - 21) + "\nthe program is done\n")


def test_bytes_that_are_not_utf8_reach_the_log_unchanged(tmp_path):
    garbage = bytes(range(256)) * 16    # 4 KiB, every byte value, invalid UTF-8 among them
    program = Program(script(tmp_path, "binary.py", """
        import sys
        sys.stdout.buffer.write(bytes(range(256)) * 16)
        sys.stdout.buffer.write(b"\\xff" * 10_000)
        sys.stdout.buffer.write(bytes(range(256)) * 16)
    """), [], tmp_path, output_limit=8 * KiB)
    assert program.wait(timeout=30) == 0
    log = program.stdout_path.read_bytes()
    assert log.startswith(garbage)
    assert log.endswith(garbage)
    assert b"[... 10000 bytes cut:" in log
    assert "\ufffd" in program.stdout   # read as text, the invalid bytes are replaced


def test_a_sandboxed_program_prints_past_the_file_size_limit_and_is_not_stopped(tmp_path):
    # The sandbox limits the size of the files a program writes: a log that were its stdout
    # would stop it with SIGXFSZ at that size. A pipe has no size.
    folder = tmp_path / "box"
    folder.mkdir()
    box = sandbox.Sandbox(folder, slot_number=TEST_SLOT,
                          limits=dict(sandbox.LIMITS, RLIMIT_FSIZE=1 * MiB))
    try:
        box.require_runs(sys.executable)
        loud = script(box.tmp, "loud.py", LOUD)
        box.own(loud)
        program = Program(loud, [4 * MiB], tmp_path, python=sys.executable, sandbox=box,
                          cwd=box.tmp, output_limit=1 * MiB)
        assert program.wait(timeout=30) == 0, program.stderr
    finally:
        box.close()
    assert program.stdout_path.read_bytes().endswith(noise(4 * MiB)[-512 * KiB:])


def test_the_bounded_tail_keeps_exactly_the_last_bytes_and_counts_the_rest():
    tail = harness.BoundedTail(10)
    stream = b""
    for size in (3, 7, 1, 25, 4, 4, 2):
        chunk = bytes([65 + size]) * size
        tail.add(chunk)
        stream += chunk
        assert tail.kept < 10 + 25      # bounded by the size and the biggest chunk
    assert b"".join(tail.take()) == stream[-10:]
    assert tail.dropped == len(stream) - 10
