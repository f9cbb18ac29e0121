"""Running the project's programs as real processes, natively or inside a p7 container.

Shared by autograde.py and the Docker tests (dockertests/). A Program writes its stdout and
stderr to log files and can be stopped (SIGTERM), killed (SIGKILL to all it started) and waited
for. A Container is one `docker run` of an image; DockerProgram runs a program in it with
`docker exec`, remembering its pid inside so that signals reach it (the docker CLI does not pass
them on to an exec'd process).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

STOP_TIMEOUT = 30
PROGRAM_TIMEOUT = 60
DOCKER_TIMEOUT = 120            # one docker command other than build
BUILD_TIMEOUT = 1800            # a first build downloads a JRE, Maven, Kafka's jars, numpy...
BUILD_ERROR_LINES = 12
LOG_TAIL_LINES = 15


class DockerError(Exception):
    """Docker could not do what we asked; the message says what and why, in a sentence or
    two followed by the lines that show it."""


def free_port():
    """A TCP port nothing listens on right now (in this network namespace)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_suffix():
    return uuid.uuid4().hex[:8]


# ---------------------------------------------------------------- programs

class Program:
    """One program running as a real process, its output captured in log files."""

    def __init__(self, name, args, log_dir):
        self.name = name
        stem = f"{time.monotonic_ns()}-{name.replace('.py', '')}"
        self.stdout_path = log_dir / f"{stem}.out"
        self.stderr_path = log_dir / f"{stem}.err"
        self.args = [str(a) for a in args]
        self.process = None

    def _launch(self, argv, **popen_args):
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(argv, stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL, **popen_args)

    @property
    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def tail(self, lines=3):
        text = " | ".join(self.stderr.strip().splitlines()[-lines:])
        return text or "(nothing on stderr)"

    def describe(self):
        return " ".join([self.name] + self.args)

    def running(self):
        return self.process.poll() is None

    def wait(self, timeout=PROGRAM_TIMEOUT):
        """The exit code, or None (after killing it) when it did not exit in time."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, as `docker stop` or kill would: the exit code, None if it hung."""
        if self.running():
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        """SIGKILL to the program and every process it started."""
        if self.process is not None and self.running():
            self.signal(signal.SIGKILL)
        if self.process is not None:
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def signal(self, signum):
        raise NotImplementedError


class NativeProgram(Program):
    def __init__(self, name, args, log_dir, folder, env):
        super().__init__(name, args, log_dir)
        # Its own process group, so that a kill reaches the workers the consumer forks too.
        self._launch([sys.executable, str(folder / name), *self.args], cwd=folder, env=env,
                     start_new_session=True)

    def signal(self, signum):
        try:
            if signum == signal.SIGKILL:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)
        except ProcessLookupError:
            pass


class DockerProgram(Program):
    """`docker exec CONTAINER python3 /files/NAME ...`, its pid kept in the container."""

    def __init__(self, container, name, args, log_dir, env=None):
        super().__init__(name, args, log_dir)
        self.container = container
        self.pid_file = f"/tmp/{log_dir.name}-{self.stdout_path.stem}.pid"
        env_args = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        self._launch(["docker", "exec", *env_args, "-e", "PYTHONUNBUFFERED=1", container.name,
                      "sh", "-c", f'echo $$ > {self.pid_file}; exec python3 "$@"', "sh",
                      f"/files/{name}", *self.args])

    def signal(self, signum):
        pid = f"$(cat {self.pid_file})"
        if signum == signal.SIGKILL:
            # The forked workers first (they would outlive their parent), then the program.
            script = (f"for c in $(cat /proc/{pid}/task/*/children 2>/dev/null); do "
                      f"kill -9 $c; done; kill -9 {pid}")
        else:
            script = f"kill -{int(signum)} {pid}"
        subprocess.run(["docker", "exec", self.container.name, "sh", "-c", script],
                       capture_output=True, timeout=STOP_TIMEOUT)


# ---------------------------------------------------------------- docker

def docker(*args, timeout=DOCKER_TIMEOUT):
    """Run one docker command; DockerError with its own words when it fails."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        raise DockerError("the docker command is not installed") from None
    except subprocess.TimeoutExpired:
        raise DockerError(f"`docker {' '.join(args)}` did not finish within {timeout} s") from None
    if done.returncode != 0:
        raise DockerError(f"`docker {' '.join(args)}` failed: "
                          + (done.stderr or done.stdout).strip())
    return done.stdout.strip()


def engine_answers():
    try:
        docker("info", timeout=60)
    except DockerError:
        return False
    return True


def build_image(context, tag):
    """`docker build CONTEXT -t TAG`; a failed build raises DockerError naming the failing step
    and its error lines. --force-rm: a failed step leaves no stopped container behind."""
    try:
        done = subprocess.run(["docker", "build", "--force-rm", "-t", tag, str(context)],
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DockerError(f"docker build did not finish within {BUILD_TIMEOUT} s") from None
    if done.returncode != 0:
        # stdout first: the steps and their output; then stderr: the builder's own error.
        raise DockerError("docker build failed: " + build_failure(done.stdout + "\n"
                                                                  + done.stderr))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEGACY_STEP = re.compile(r"^Step \d+/\d+ : ")
_LEGACY_NOISE = re.compile(r"^( ---> |Removing intermediate container|\s*$)")


def build_failure(output):
    """The failing step and its last error lines, from the output of either builder.

    The legacy builder prints `Step N/M : INSTRUCTION`, the step's output, then `The command
    ... returned a non-zero code: N`; BuildKit prints a block between `------` lines that starts
    with ` > [stage N/M] INSTRUCTION:` and ends with `ERROR: failed to solve: ...`. Colours and
    the CLI's notice that the legacy builder is deprecated are left out."""
    lines = _ANSI.sub("", output).splitlines()
    notice = next((i for i, line in enumerate(lines) if line.startswith("DEPRECATED:")), None)
    if notice is not None:  # the notice's lines are indented; it ends at the first line that isn't
        end = next((i for i in range(notice + 1, len(lines))
                    if not lines[i].startswith(" ")), len(lines))
        del lines[notice:end]
    buildkit = [i for i, line in enumerate(lines) if line.startswith(" > [")]
    if buildkit:
        start = buildkit[-1]
        block = [line for line in lines[start + 1:] if line.strip() != "------"]
        end = next((i for i, line in enumerate(block) if line.startswith("Dockerfile:")),
                   len(block))
        errors = block[:end][-BUILD_ERROR_LINES:]
        final = [line for line in lines if line.startswith("ERROR:")][-1:]
        return "\n".join([f"step {lines[start][3:].rstrip(':')}", *errors, *final])
    steps = [i for i, line in enumerate(lines) if _LEGACY_STEP.match(line)]
    if steps:
        start = steps[-1]
        step_output = [line for line in lines[start + 1:] if not _LEGACY_NOISE.match(line)]
        return "\n".join([lines[start].replace(" : ", ": ", 1), *step_output[-BUILD_ERROR_LINES:]])
    meaningful = [line for line in lines if not _LEGACY_NOISE.match(line)]
    return "\n".join(meaningful[-BUILD_ERROR_LINES:]) or "(docker printed nothing)"


class Container:
    """One container of the p7 image, with the files folder mounted as /files.

    broker_port: the port the broker inside listens on and advertises (it follows
    KAFKA_BOOTSTRAP, as the programs do); host_port publishes it on the host."""

    def __init__(self, name, image, files_dir, broker_port=9092, host_port=None):
        self.name = name
        self.image = image
        self.files_dir = files_dir
        self.broker_port = broker_port
        self.host_port = host_port

    def run(self):
        args = ["run", "-d", "-v", f"{self.files_dir}:/files", f"--name={self.name}"]
        if self.host_port is not None:
            args += ["-p", f"{self.host_port}:{self.broker_port}"]
        if self.broker_port != 9092:
            args += ["-e", f"KAFKA_BOOTSTRAP=localhost:{self.broker_port}"]
        docker(*args, self.image)
        return self

    def state(self):
        """(running, exit code) as docker inspect reports them; (False, None) when gone."""
        try:
            text = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.name)
        except DockerError:
            return False, None
        running, code = text.split()
        return running == "true", int(code)

    def logs_tail(self, lines=LOG_TAIL_LINES):
        done = subprocess.run(["docker", "logs", "--tail", str(lines), self.name],
                              capture_output=True, text=True, timeout=DOCKER_TIMEOUT)
        return (done.stdout + done.stderr).strip() or "(the container logged nothing)"

    def require_running(self):
        running, code = self.state()
        if not running:
            raise DockerError(f"container {self.name} is not running (exit code {code}); the "
                              f"last lines of `docker logs {self.name}`:\n{self.logs_tail()}")

    def exec(self, *command, timeout=DOCKER_TIMEOUT):
        return docker("exec", self.name, *command, timeout=timeout)

    def program(self, name, args, log_dir, env=None):
        return DockerProgram(self, name, args, log_dir, env)

    def stop(self):
        docker("stop", self.name, timeout=DOCKER_TIMEOUT + 60)

    def start(self):
        docker("start", self.name)

    def remove(self):
        """Remove the container, whatever its state; files it wrote into /files as root go
        first, while it can still remove them."""
        if self.state()[0]:
            subprocess.run(["docker", "exec", self.name, "sh", "-c",
                            "rm -rf /files/* /files/.[!.]*"], capture_output=True,
                           timeout=DOCKER_TIMEOUT)
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True,
                       timeout=DOCKER_TIMEOUT)
