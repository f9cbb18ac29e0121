"""The submission's programs as the grader runs them: local processes in the grading folder,
or `docker exec` in the submission's container, through tools/harness.py either way."""

import os
import sys

from tools import harness, p7check
from tools.harness import PROGRAM_TIMEOUT, ProgramTimeout

from .registry import CheckFailed, require

# Up to 2,000 simulated days per second: decades of data within the session, and check 7's
# 4,000 messages a few seconds after the producer starts rather than ten (the slowest wait of
# the session at 0.002 s).
WEATHER_DELAY_SEC = "0.0005"


class Programs:
    """Everything one grading session starts; kill_all() ends what is left of it."""

    def __init__(self, folder, logs):
        self.folder = folder
        self.logs = logs
        self.container = None       # set once the submission's container runs (--docker)
        self.started = []
        self.consumers = []         # the consumer.py processes that later checks stop

    def start(self, name, *args):
        if self.container is not None:
            program = self.container.program(name, args, self.logs,
                                             env={"WEATHER_DELAY_SEC": WEATHER_DELAY_SEC})
        else:
            env = dict(os.environ, KAFKA_BOOTSTRAP=p7check.bootstrap(), PYTHONUNBUFFERED="1",
                       WEATHER_DELAY_SEC=WEATHER_DELAY_SEC)
            program = harness.Program(self.folder / name, args, self.logs, env=env,
                                      cwd=self.folder)
        self.started.append(program)
        return program

    def run_to_end(self, name, *args, timeout=PROGRAM_TIMEOUT):
        """(program, exit code) of a program that is meant to finish by itself."""
        program = self.start(name, *args)
        try:
            return program, program.wait(timeout)
        except ProgramTimeout:
            raise CheckFailed(f"`{program.describe()}` did not finish within {timeout} s") \
                from None

    def start_consumer(self, *args):
        consumer = self.start("consumer.py", *args)
        self.consumers.append(consumer)
        return consumer

    def stop_consumers(self):
        """SIGTERM to every running consumer; [what went wrong] (none should exit non-zero)."""
        problems = []
        for consumer in self.consumers:
            if consumer.running():
                code = stopped(consumer)
                if code != 0:
                    problems.append(f"`{consumer.describe()}` exited with {code} on SIGTERM "
                                    f"({consumer.tail(1)})")
        self.consumers = []
        return problems

    def kill_all(self):
        for program in self.started:
            try:
                program.kill()
            except Exception as err:  # noqa: BLE001  (keep cleaning up the others)
                print(f"cleanup: could not kill {program.describe()}: {err}", file=sys.stderr)


def stopped(program):
    """The exit code on SIGTERM, None when it ignored it (and was killed)."""
    try:
        return program.stop()
    except ProgramTimeout:
        return None


def require_running(*programs):
    for program in programs:
        require(program.running(), f"`{program.describe()}` exited with "
                                   f"{program.process.returncode}: {program.tail()}")
