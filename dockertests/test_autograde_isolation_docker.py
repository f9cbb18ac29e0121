"""autograde.py --image on a hostile submission: the grader's container has no network but its
own broker, a read-only root with only /files and /tmp writable, and none of the grader's
environment.

The submission is the final-version corpus submission whose weather.py (run by the grader's
pace probe) and producer.py (run by check 3), at import, try to reach this machine (every
address of it, at the port of a listener of the test's own and at a port it publishes for a
second broker), that second broker (a container on Docker's default bridge) at its own address,
and the container's own broker; try to write under /usr/lib, /etc, /, /var/tmp, /files and
/tmp; and note all of it, with the names in its environment and whether a variable set for the
grader alone reached it, as a line of /files/isolation.jsonl, read back from the grading folder
kept with --keep.

The same lines run first in an ordinary container (the default bridge, a writable root): it
must reach the listener and the second broker, so that every failure in the grader's container
is the container's confinement and not a target that was not there.

And the grader's container on its own (harness.Container(hardened=True, read_only=True,
networked=False)): only a loopback, a read-only root, /tmp writable with exec, its broker
reached through the relay, its peak memory read from its cgroup."""

import errno
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from conftest import ROOT
from tools import harness, relay
from tools.harness import wait_until

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from submissions import final_variants  # noqa: E402

TIMEOUT = 900               # the first --image builds the course's image
BROKER_TIMEOUT = 120
RECORDS = "isolation.jsonl"
READ_ONLY = ("/usr/lib/p7-hostile", "/etc/p7-hostile", "/p7-hostile", "/var/tmp/p7-hostile")
WRITABLE = ("/files/p7-hostile", "/tmp/p7-hostile")
MARKER_VARIABLE = "P7_ISOLATION_TEST_MARKER"     # set for the grader's process alone
MARKER = f"p7-grader-only-{uuid.uuid4().hex}"

# Formatted with the targets, the paths and the marker; at the top of weather.py and producer.py.
HOSTILE = '''\
# At import: what this process reaches and writes, as a line of /files/{records}.
def _p7_isolation_probe():
    import errno, json, os, socket, sys
    found = {{"argv0": sys.argv[0], "uid": os.getuid(), "connect": {{}}, "write": {{}}}}
    targets = [tuple(target) for target in {targets!r}]
    try:  # the default gateway, if this container has a route to one
        for line in open("/proc/net/route").read().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000" and fields[2] != "00000000":
                gateway = socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
                targets += [(gateway, port) for port in {ports!r}]
    except (OSError, IndexError, ValueError):
        pass
    own = os.environ.get("KAFKA_BOOTSTRAP", "").rpartition(":")
    if own[2].isdigit():
        targets.append(("own", int(own[2])))
    for host, port in targets:
        try:
            with socket.create_connection(("127.0.0.1" if host == "own" else host, port),
                                          timeout=3):
                found["connect"][f"{{host}}:{{port}}"] = "connected"
        except OSError as err:
            found["connect"][f"{{host}}:{{port}}"] = errno.errorcode.get(err.errno, str(err))
    for path in {paths!r}:
        try:
            with open(path, "w") as out:
                out.write("written by a submission")
            os.remove(path)
            found["write"][path] = "written"
        except OSError as err:
            found["write"][path] = errno.errorcode.get(err.errno, str(err))
    found["environment"] = sorted(os.environ)
    found["marker"] = any({marker!r} in name + "=" + value
                          for name, value in os.environ.items())
    with open("/files/{records}", "a") as out:
        out.write(json.dumps(found) + "\\n")


_p7_isolation_probe()
'''


def own_addresses():
    """The IPv4 addresses of this network namespace's interfaces but the loopback (the Docker
    bridges' gateways among them): where the engine's host is reached."""
    found = []
    for _index, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915,  # SIOCGIFADDR
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address
        address = socket.inet_ntoa(packed[20:24])
        if not address.startswith("127."):
            found.append(address)
    return found


@pytest.fixture
def listener():
    """A TCP listener on every address of this namespace; yields (port, [peer addresses of the
    connections it accepted])."""
    server = socket.create_server(("0.0.0.0", 0))
    accepted = []

    def serve():
        while True:
            try:
                sock, peer = server.accept()
            except OSError:
                return
            accepted.append(peer[0])
            sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(10)


@pytest.fixture
def other_broker(image):
    """A second broker: a container of the p7 image on the default bridge, its port published
    here too. Yields (its address on the bridge, its port)."""
    port = harness.free_port()
    container = harness.Container(f"p7-isolation-other-{harness.unique_suffix()}", image, None,
                                  broker_port=port, host_port=port)
    try:
        container.run()
        wait_until(lambda: container.require_running() or broker_answers(port), BROKER_TIMEOUT,
                   f"the second broker on localhost:{port}", interval=1)
        address = harness.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}",
                                 container.name)
        assert address, "the second broker's container has no address on the bridge"
        yield address, port
    finally:
        container.remove()


def broker_answers(port):
    try:
        admin = KafkaAdminClient(bootstrap_servers=[f"localhost:{port}"],
                                 bootstrap_timeout_ms=2000, client_id="p7-isolation-test")
    except KafkaError:
        return False
    admin.close()
    return True


def hostile_code(targets, ports):
    return HOSTILE.format(records=RECORDS, targets=[list(t) for t in targets], ports=ports,
                          paths=list(READ_ONLY + WRITABLE), marker=MARKER)


def control_record(image, code, folder):
    """The hostile lines run as a script in an ordinary container of `image` (default bridge,
    writable root, root user, /files a folder of ours); its one record."""
    folder.mkdir()
    done = subprocess.run(["docker", "run", "--rm", "-v", f"{folder}:/files", "-e",
                           f"{MARKER_VARIABLE}={MARKER}", image, "python3", "-c", code],
                          capture_output=True, text=True, timeout=harness.DOCKER_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    (record,) = [json.loads(line) for line in (folder / RECORDS).read_text().splitlines()]
    return record


def test_a_hostile_submission_reaches_nothing_and_writes_only_files_and_tmp(image, tmp_path,
                                                                           listener,
                                                                           other_broker):
    listen_port, accepted = listener
    other_address, other_port = other_broker
    hosts = own_addresses()
    assert hosts, "this network namespace has no address besides the loopback"
    targets = ([(host, port) for host in hosts for port in (listen_port, other_port)]
               + [(other_address, other_port)])
    code = hostile_code(targets, [listen_port, other_port])

    # The control: with a network, the targets are there to be reached.
    control = control_record(image, code, tmp_path / "control")
    reached = {target for target, result in control["connect"].items() if result == "connected"}
    assert f"{other_address}:{other_port}" in reached, control
    assert any(target.endswith(f":{listen_port}") for target in reached), control
    assert accepted, "the listener saw no connection from the ordinary container"
    assert control["write"]["/var/tmp/p7-hostile"] == "written", control
    accepted_by_control = len(accepted)

    shutil.copytree(final_variants.FINAL, tmp_path / "hostile",
                    ignore=shutil.ignore_patterns("__pycache__"))
    files = tmp_path / "hostile" / "files"
    for name in ("weather.py", "producer.py"):
        path = files / name
        path.write_text(code + path.read_text())
    result_file = tmp_path / "grade.json"
    env = dict(os.environ, **{MARKER_VARIABLE: MARKER})
    graded = subprocess.run([sys.executable, str(ROOT / "autograde.py"), "--image",
                             "--version", "final", "--only", "1,2,3", "--keep",
                             "--files", str(files), "--json", str(result_file)],
                            capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT, env=env)
    kept = [line.split("kept the grading folder ", 1)[1].strip()
            for line in graded.stdout.splitlines() if "kept the grading folder " in line]
    try:
        output = graded.stdout[-3000:] + graded.stderr[-2000:]
        # The hostile lines change nothing that is graded: the container is enough for a
        # correct submission.
        results = json.loads(result_file.read_text())["checks"]
        assert [(r["number"], r["status"]) for r in results] == [
            (1, "PASS"), (2, "PASS"), (3, "PASS")], output
        assert kept, output
        records = [json.loads(line) for line in
                   (Path(kept[0]) / "files" / RECORDS).read_text().splitlines()]
        # They ran in the grader's pace probe (python3 -c) and in producer.py.
        assert {record["argv0"] for record in records} >= {"-c", "/files/producer.py"}, records
        for record in records:
            where = f"{record['argv0']} (uid {record['uid']})"
            escaped = {target: result for target, result in record["connect"].items()
                       if not target.startswith("own:") and result == "connected"}
            assert not escaped, f"{where} reached {escaped}"
            assert set(record["connect"]) >= {f"{host}:{port}" for host, port in targets}, \
                record
            for path in READ_ONLY:
                assert record["write"][path] == errno.errorcode[errno.EROFS], \
                    f"{where} writing {path}: {record['write'][path]} (a read-only root says EROFS)"
            for path in WRITABLE:
                assert record["write"][path] == "written", f"{where} could not write {path}"
            assert not record["marker"], \
                f"{where} saw the grader's own {MARKER_VARIABLE}: {record['environment']}"
        producer = next(r for r in records if r["argv0"] == "/files/producer.py")
        own = [result for target, result in producer["connect"].items()
               if target.startswith("own:")]
        assert own == ["connected"], f"producer.py could not reach its own broker: {producer}"
        assert len(accepted) == accepted_by_control, \
            f"the grader's container reached this machine's listener from {accepted}"
    finally:
        for folder in kept:
            shutil.rmtree(folder, ignore_errors=True)


def test_the_graders_container_has_its_loopback_alone_and_the_relay_reaches_its_broker(image):
    """harness.Container(hardened=True, read_only=True, networked=False) as the grader runs it,
    its broker reached from here only through a tools/relay.py Relay; its peak memory read from
    its cgroup while it runs."""
    with relay.Relay() as the_relay:
        container = harness.Container(f"p7-isolation-box-{harness.unique_suffix()}", image, None,
                                      broker_port=the_relay.port, hardened=True,
                                      read_only=True, networked=False)
        try:
            container.run()
            the_relay.start(container.dial_broker)
            wait_until(lambda: container.require_running() or broker_answers(the_relay.port),
                       BROKER_TIMEOUT, f"the broker through the relay on {the_relay.port}",
                       interval=1)
            interfaces = container.exec("sh", "-c", "ls /sys/class/net").split()
            assert interfaces == ["lo"], interfaces
            mounts = {fields[1]: fields[3].split(",") for fields in
                      (line.split() for line in container.exec("cat", "/proc/mounts")
                       .splitlines())}
            assert "ro" in mounts["/"], mounts["/"]
            assert "rw" in mounts["/tmp"] and "noexec" not in mounts["/tmp"], mounts["/tmp"]
            assert "noexec" in mounts[harness.BROKER_STATE], mounts[harness.BROKER_STATE]
            pid = int(harness.docker("inspect", "-f", "{{.State.Pid}}", container.name))
            peak = container.peak_memory()
            if Path(f"/proc/{pid}/cgroup").exists():  # the engine's processes are seen here
                assert peak is not None and 0 < peak <= 4 * 1024 ** 3, peak
        finally:
            container.remove()
    assert the_relay.connections() == 0
