#!/usr/bin/env python3
"""Start and stop the project's single Apache Kafka broker (KRaft mode, no ZooKeeper).

    python3 broker/launcher.py start [--port 9092] [--foreground] [--listen-host 0.0.0.0]
        [--node-id N --quorum-voters 1@HOST:PORT,... --cluster-id ID --cluster
         --internal-listener HOST:PORT]    # one node of compose.yaml's cluster (P7_* env too)
    python3 broker/launcher.py stop
    python3 broker/launcher.py status
    python3 broker/launcher.py fetch      # only fill the jar cache (the Dockerfile's build stage)
    python3 broker/launcher.py tool kafka-topics --describe --topic temperatures
        # Kafka's kafka-topics, kafka-console-consumer, kafka-consumer-groups, kafka-get-offsets
        # (broker/bin/ has a script of each name that runs this)
    python3 broker/launcher.py cluster [--ports 9192,9193,9194]   # three nodes (make cluster)
    python3 broker/launcher.py cluster-stop
    python3 broker/launcher.py cluster-status

The broker comes from KAFKA_HOME when it points at an unpacked Kafka release (the Docker image),
otherwise from Maven Central: `mvn dependency:copy-dependencies` on broker/pom.xml fills a cache
that later runs reuse. The Kafka version lives in broker/kafka-version and the broker settings in
broker/server.properties; the Dockerfile reads the same two files. The three-node cluster uses the
same settings plus broker/cluster.properties (its durability rules), and per node only its id,
ports and folders. compose.yaml runs the same cluster as three containers, each a `start
--foreground` whose node options come from its environment (P7_NODE_ID, P7_QUORUM_VOTERS, ...).

Kafka's own conventions work too: every KAFKA_* variable that is not one of NOT_SETTINGS becomes
a broker setting by the apache/kafka image's rule (KAFKA_LOG_RETENTION_HOURS=1 is
log.retention.hours=1; see setting_name), added after the shared files, and KAFKA_HEAP_OPTS and
KAFKA_OPTS are the JVM's options. A setting Kafka refuses ends the start with one sentence
naming its variable, and so do JVM options with which Java exits at once instead of running Kafka
(-version, -help, an option it does not know): Java runs once with them before anything is
formatted or started.

KAFKA_BOOTSTRAP, where the programs connect, gives the single broker's port when neither --port
nor P7_PORT does (bootstrap_port): unset or empty it means 9092; otherwise it must be exactly
localhost:PORT or 127.0.0.1:PORT, localhost in any letter case, PORT in 1..65535. Any other value
(white space around it, another host, [::1], a list, a port that is no number) is refused, as it
names a broker this launcher cannot start. It is read only by the commands that need a port:
start, stop and status, when no --port (and for stop no --state-dir or P7_BROKER_STATE) makes it
unneeded; `tool` passes it on to the tool, which can reach any broker, as HOST:PORT[,HOST:PORT...].
The cluster commands and fetch never read it.

Bad input (a KAFKA_BOOTSTRAP that cannot be served, a KAFKA_* value a command reads that is not
UTF-8 text, a bad option) ends the command with one sentence and exit code 2, before anything is
written; a problem met on the way (Java missing, a port held, Kafka refusing a setting) with one
sentence and exit code 1.

Standard library only: it runs before any virtualenv exists, and inside the container.
"""

import argparse
import base64
import fcntl
import hashlib
import os
import shlex
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

BROKER_DIR = Path(__file__).resolve().parent
VERSION_FILE = BROKER_DIR / "kafka-version"
BASE_CONFIG = BROKER_DIR / "server.properties"
CLUSTER_CONFIG = BROKER_DIR / "cluster.properties"
LOG_CONFIG = BROKER_DIR / "log4j2.properties"
POM = BROKER_DIR / "pom.xml"
CACHE_DIR = BROKER_DIR / ".cache"

DEFAULT_PORT = 9092
CLUSTER_PORTS = (9192, 9193, 9194)
CLUSTER_DIR = BROKER_DIR / ".cluster"
HEAP = "512m"
JAVA_MIN = 17
START_TIMEOUT_SEC = 120
WAIT_QUIET_SEC = 10
STOP_TIMEOUT_SEC = 60
LOG_LINES_ON_FAILURE = 25


class LauncherError(Exception):
    """A problem the user can fix; printed as one sentence, never as a traceback (exit code 1)."""


class BadInput(LauncherError):
    """Input the launcher cannot use (an environment variable, an option): exit code 2, before
    anything is written."""


# ---------------------------------------------------------------- readiness probe

def metadata_answer(host, port, timeout=2.0):
    """Send a Kafka Metadata (v4) request and return the number of brokers in the answer.

    Returns None when nothing listens on the port, and raises LauncherError when something
    listens but does not speak Kafka. Hand-rolled so the launcher needs no Python packages.
    """
    correlation_id = 7
    client_id = b"p7-launcher"
    # Header v1: api_key=3 (Metadata), api_version=4, correlation id, client id.
    # Body v4: topics=null (all topics), allow_auto_topic_creation=false.
    body = struct.pack(">hhih", 3, 4, correlation_id, len(client_id)) + client_id
    body += struct.pack(">ib", -1, 0)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _read_exactly(sock, 4))[0]
            reply = _read_exactly(sock, size)
    except (ConnectionRefusedError, socket.timeout, TimeoutError):
        return None
    except (OSError, struct.error, EOFError) as err:
        if isinstance(err, OSError) and err.errno in (111, 113, 101):
            return None
        raise LauncherError(f"something listens on {host}:{port} but it is not a Kafka broker "
                            f"({err.__class__.__name__})") from None
    got_id, _throttle, broker_count = struct.unpack(">iii", reply[:12])
    if got_id != correlation_id:
        raise LauncherError(f"something listens on {host}:{port} but it is not a Kafka broker")
    return broker_count


def _read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def broker_is_ready(port, brokers=1):
    """Whether the broker on `port` answers with at least `brokers` live brokers. A KRaft broker
    lists only the brokers the active controller has let in (unfenced), so an answer naming all
    of a cluster's nodes also means that its quorum has a leader."""
    try:
        return (metadata_answer("127.0.0.1", port) or 0) >= brokers
    except LauncherError:
        return False


def port_is_open(port):
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------- the broker's jars

def kafka_version():
    return VERSION_FILE.read_text().strip()


def java_command():
    """The java that runs Kafka: JAVA_HOME's, else the one on PATH; refused when older than
    Kafka 4 allows (its broker and tools are built for Java 17)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        java = str(Path(java_home) / "bin" / "java")
    else:
        java = shutil.which("java")
    if not java:
        raise LauncherError(f"Java is not installed (no `java` on PATH): install Java {JAVA_MIN} "
                            f"or newer, for example `apt-get install openjdk-{JAVA_MIN}-jre-"
                            "headless`")
    found = java_version(java)
    if found is not None and found < JAVA_MIN:
        raise LauncherError(f"Kafka needs Java {JAVA_MIN} or newer, and {java} is Java {found}: "
                            f"install a newer one (for example `apt-get install openjdk-"
                            f"{JAVA_MIN}-jre-headless`) or point JAVA_HOME at one")
    return java


def java_version(java):
    """The major version of `java` (8 for "1.8.0_392", 17 for "17.0.15"), None when it cannot
    be told. Read from its installation's `release` file, which costs no JVM start; else from
    `java -version`."""
    text = ""
    release = Path(os.path.realpath(java)).parent.parent / "release"
    try:
        text = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(), re.M).group(1)
    except (OSError, AttributeError):
        try:
            answer = subprocess.run([java, "-version"], capture_output=True, text=True,
                                    timeout=60)
            text = re.search(r'version "([^"]+)"', answer.stderr + answer.stdout).group(1)
        except (OSError, subprocess.SubprocessError, AttributeError):
            return None
    parts = re.findall(r"\d+", text)
    if not parts:
        return None
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])


def classpath():
    """The broker's and tools' classpath: KAFKA_HOME/libs, or the Maven cache (filled on first
    use)."""
    kafka_home = environment_text("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise LauncherError(f"KAFKA_HOME={kafka_home} is not an unpacked Kafka release "
                                "(no libs/kafka_2.13-*.jar): fix it or unset it to use Maven")
        return f"{libs}/*"
    version = kafka_version()
    libs = CACHE_DIR / f"kafka-{version}"
    if not cache_is_complete(libs, version):
        fetch_from_maven(version, libs)
    return f"{libs}/*"


def cache_marker(version):
    """What `.complete` holds once the cache has the jars of this version and this pom.xml: a
    pom that asks for other jars (Kafka's tools were added once) makes the cache be fetched
    again."""
    return f"{version}\n{hashlib.sha256(POM.read_bytes()).hexdigest()}\n"


def cache_is_complete(libs, version):
    try:
        return (libs / ".complete").read_text() == cache_marker(version)
    except FileNotFoundError:
        return False


class Progress:
    """One line that says how far a long step is, on stderr: rewritten in place on a terminal;
    elsewhere (CI, a log) plain lines, at most one every `every` seconds."""

    def __init__(self, stream=None, every=10.0):
        self.stream, self.every = stream or sys.stderr, every
        self.tty = self.stream.isatty()
        self.last_shown = None
        self.shown = False

    def show(self, text):
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
        elif self.last_shown is None or now - self.last_shown >= self.every:
            print(text, file=self.stream, flush=True)
        else:
            return
        self.last_shown, self.shown = now, True

    def clear(self):
        """Ends the updating line on a terminal, so that what follows starts on its own."""
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def done(self, text):
        self.clear()
        print(text, file=self.stream, flush=True)


MAVEN_DOWNLOADED = re.compile(r"Downloaded from \S+: (\S+) \(([\d.,]+) (B|kB|MB)")
MAVEN_COPYING = re.compile(r"Copying (\S+\.jar) to ")
UNIT_BYTES = {"B": 1, "kB": 1000, "MB": 1000 ** 2}


def fetch_from_maven(version, libs):
    mvn = shutil.which("mvn")
    if not mvn:
        raise LauncherError("neither KAFKA_HOME nor Maven is available: install Maven "
                            "(`apt-get install maven`) or point KAFKA_HOME at an unpacked Kafka "
                            "release")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".fetch.lock", "w") as lock:
        # Launchers started at once (make test's two test processes, each with its broker)
        # fetch once: the others wait here, then find the cache complete.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache_is_complete(libs, version):
            return
        print(f"launcher: fetching Apache Kafka {version} from Maven Central into {libs} "
              "(first run only)", file=sys.stderr, flush=True)
        # Into a folder of its own, put in place by renames once complete: a broker running
        # from the old jars keeps those it opened, and any it opens later are the new ones.
        fresh = libs.with_name(libs.name + ".fetching")
        shutil.rmtree(fresh, ignore_errors=True)
        started = time.monotonic()
        # Maven's own lines (not -q) say what it downloads and copies; they are read here and
        # summed up on one progress line. Maven names no total before it is done, so the line
        # counts what has arrived: files and MB from Maven Central (none when ~/.m2 has them
        # all), then jars copied into the cache.
        process = subprocess.Popen(
            [mvn, "-B", "-f", str(POM), f"-Dkafka.version={version}",
             "dependency:copy-dependencies", f"-DoutputDirectory={fresh}",
             "-DincludeScope=runtime"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL)
        progress, output = Progress(), []
        files = size = jars = 0
        for line in process.stdout:
            output.append(line.rstrip())
            if match := MAVEN_DOWNLOADED.search(line):
                files += 1
                size += float(match[2].replace(",", "")) * UNIT_BYTES[match[3]]
            elif MAVEN_COPYING.search(line):
                jars += 1
            else:
                continue
            progress.show(f"launcher: Maven: downloaded {files} files ({size / 1e6:.1f} MB), "
                          f"copied {jars} jars, {time.monotonic() - started:.0f} s")
        if process.wait() != 0:
            progress.done("launcher: Maven failed")
            errors = [line for line in output if "[ERROR]" in line] or output
            tail = "\n".join(errors[-15:])
            raise LauncherError(f"Maven could not fetch Kafka {version}:\n{tail}")
        total = sum(jar.stat().st_size for jar in fresh.glob("*.jar"))
        (fresh / ".complete").write_text(cache_marker(version))
        old = libs.with_name(libs.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if libs.exists():
            libs.rename(old)
        fresh.rename(libs)
        shutil.rmtree(old, ignore_errors=True)
        progress.done(f"launcher: Kafka {version}: {jars} jars ({total / 1e6:.0f} MB) in "
                      f"{libs}, {files} files ({size / 1e6:.1f} MB) downloaded, "
                      f"{time.monotonic() - started:.0f} s")


# ---------------------------------------------------------------- the environment

def is_utf8(text):
    """Whether `text` came from UTF-8 bytes: Python decodes the environment with
    surrogateescape, which turns each byte that is not UTF-8 into a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def raw_bytes(text):
    """The bytes the environment held for `text`, to show them escaped (b'\\xff')."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def not_utf8_sentence(name, value):
    return (f"{name} is not UTF-8 text ({raw_bytes(value)!r}): give it as UTF-8, or unset "
            "it")


def environment_text(name, env=None):
    """The value of the environment variable `name` (None when unset), refused with BadInput
    when its bytes are not UTF-8: a launcher that passed them on would write them into a
    UTF-8 config or a message and fail there."""
    value = (os.environ if env is None else env).get(name)
    if value is not None and not is_utf8(value):
        raise BadInput(not_utf8_sentence(name, value))
    return value


WHITE_SPACE = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", " ": "a space"}


def surrounding_space(value):
    """What white space `value` starts or ends with ("it ends with a line break"), else None."""
    if value[-1:].isspace():
        return f"it ends with {WHITE_SPACE.get(value[-1], 'white space')}"
    if value[:1].isspace():
        return f"it starts with {WHITE_SPACE.get(value[0], 'white space')}"
    return None


LOCAL_HOSTS = ("localhost", "127.0.0.1")


def bootstrap_port(value):
    """The port of the single broker that a KAFKA_BOOTSTRAP value names, the one place where the
    launcher reads that value for a port. Unset (None) or empty: DEFAULT_PORT. Otherwise exactly
    HOST:PORT, HOST localhost (in any letter case: host names are compared so) or 127.0.0.1,
    PORT decimal digits in 1..65535. Anything else raises BadInput, one sentence naming the
    value, what is wrong with it and what works: white space around it, a list, [::1] or
    another host (the broker listens on this machine's 127.0.0.1 only), no port, a port that
    is not a number or out of range."""
    if not value:
        return DEFAULT_PORT
    if not is_utf8(value):
        raise BadInput(not_utf8_sentence("KAFKA_BOOTSTRAP", value))
    host, colon, port = value.rpartition(":")
    if surrounding_space(value):
        problem = surrounding_space(value)
    elif "," in value:
        problem = "it is a list of brokers, and the launcher starts one"
    elif not colon:
        problem = "it names no port"
    elif value.startswith("[") or ":" in host:
        problem = "it is an IPv6 address, and the broker listens on 127.0.0.1"
    elif not host:
        problem = "it names no host"
    elif host.lower() not in LOCAL_HOSTS:
        problem = (f"it names the host {host!r}, and the launcher starts a broker on this "
                   "machine only")
    elif not re.fullmatch(r"[0-9]+", port):
        problem = f"its port {port!r} is not a number"
    elif not 0 < int(port) < 65536:
        problem = f"its port {port} is not between 1 and 65535"
    else:
        return int(port)
    raise BadInput(f"KAFKA_BOOTSTRAP is {value!r}: {problem}; give localhost:PORT (like "
                   f"localhost:{DEFAULT_PORT}), leave it unset for {DEFAULT_PORT}, or give the "
                   "port with --port")


def default_port():
    """The port of KAFKA_BOOTSTRAP (see bootstrap_port): 9092 when it is unset or empty;
    BadInput when the launcher cannot serve it."""
    return bootstrap_port(environment_text("KAFKA_BOOTSTRAP"))


def tool_bootstrap():
    """Where a Kafka tool without an address of its own connects: KAFKA_BOOTSTRAP as the
    programs take it, HOST:PORT[,HOST:PORT...] with any hosts (a tool reaches any broker, the
    compose nodes' kafka1:19092,... too), else localhost:9092. BadInput for a value with white
    space around it or an entry that is not HOST:PORT with a port in 1..65535."""
    value = environment_text("KAFKA_BOOTSTRAP")
    if not value:
        return f"localhost:{DEFAULT_PORT}"
    problem = surrounding_space(value)
    for entry in value.split(","):
        if problem:
            break
        host, _, port = entry.strip().rpartition(":")
        if not host or not re.fullmatch(r"[0-9]+", port) or not 0 < int(port) < 65536:
            problem = f"{entry!r} is not HOST:PORT with a port between 1 and 65535"
    if problem:
        raise BadInput(f"KAFKA_BOOTSTRAP is {value!r}: {problem}; give HOST:PORT[,HOST:PORT...] "
                       f"(like localhost:{DEFAULT_PORT}), or the tool's --bootstrap-server")
    return value


# ---------------------------------------------------------------- configuration and storage

# KAFKA_* variables that are not broker settings: the JVM options Kafka's own scripts read
# (KAFKA_HEAP_OPTS and KAFKA_OPTS are honoured, see jvm_options; the others are left alone),
# where Kafka lives, and this project's address for its clients.
NOT_SETTINGS = frozenset({
    "KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS",
    "KAFKA_JMX_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_DEBUG", "KAFKA_HOME", "KAFKA_VERSION",
    "KAFKA_BOOTSTRAP"})
# What the launcher itself decides for each node, from its options and broker/server.properties:
# a KAFKA_* variable for one of these would contradict them, so it is refused, naming the way.
LAUNCHER_SETTINGS = {
    "node.id": "--node-id (P7_NODE_ID)",
    "listeners": "--port and --listen-host (P7_PORT, P7_LISTEN_HOST)",
    "advertised.listeners": "--port and --internal-listener (P7_PORT, P7_INTERNAL_LISTENER)",
    "controller.quorum.voters": "--quorum-voters (P7_QUORUM_VOTERS)",
    "log.dirs": "--state-dir (P7_BROKER_STATE)",
    "log.dir": "--state-dir (P7_BROKER_STATE)",
    "process.roles": "broker/server.properties",
    "controller.listener.names": "broker/server.properties",
    "inter.broker.listener.name": "broker/server.properties",
    "listener.security.protocol.map": "broker/server.properties",
}
UNDERSCORES = {"___": "-", "__": "_", "_": "."}


def setting_name(variable):
    """The apache/kafka image's rule: KAFKA_ stripped, lower-cased, then ___ becomes -, __
    becomes _ and _ becomes . (KAFKA_LOG_RETENTION_HOURS -> log.retention.hours)."""
    return re.sub("___|__|_", lambda run: UNDERSCORES[run[0]], variable[6:].lower())


def environment_settings(env=None):
    """{setting: (variable, value)} of the KAFKA_* variables in `env` (default: ours)."""
    env = os.environ if env is None else env
    settings = {}
    for variable, value in sorted(env.items()):
        if not variable.startswith("KAFKA_") or variable in NOT_SETTINGS:
            continue
        if not is_utf8(variable):
            raise BadInput(f"the name of the variable {raw_bytes(variable)!r} is not UTF-8 "
                           "text: a KAFKA_ variable is a broker setting's name")
        if not is_utf8(value):
            raise BadInput(not_utf8_sentence(variable, value))
        name = setting_name(variable)
        if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*", name):
            raise LauncherError(f"{variable} names no broker setting ({name!r}): a KAFKA_ "
                                "variable is a setting's name with . as _, _ as __ and - as ___")
        if name in LAUNCHER_SETTINGS:
            raise LauncherError(f"{variable} would set {name}, which the launcher decides for "
                                f"each node: use {LAUNCHER_SETTINGS[name]} instead")
        if "\n" in value or "\r" in value:
            raise LauncherError(f"{variable} holds a line break, which no broker setting can")
        settings[name] = (variable, value)
    return settings


def jvm_options():
    """The broker's heap (KAFKA_HEAP_OPTS, else 512 MB) and KAFKA_OPTS, as Kafka's scripts take
    them."""
    options = []
    for variable, default in (("KAFKA_HEAP_OPTS", f"-Xmx{HEAP} -Xms{HEAP}"), ("KAFKA_OPTS", "")):
        try:
            options += shlex.split(environment_text(variable) or default)
        except ValueError as err:
            raise LauncherError(f"{variable} cannot be split into Java options ({err})") from None
    return options


def jvm_variables():
    """The JVM option variables that are set (and not empty): KAFKA_HEAP_OPTS, KAFKA_OPTS."""
    return [v for v in ("KAFKA_HEAP_OPTS", "KAFKA_OPTS") if environment_text(v)]


def check_settings(cp, state, timeout=START_TIMEOUT_SEC):
    """When KAFKA_* variables change the broker's settings or its JVM, Kafka reads the config
    once before the start, as the broker will (StorageTool parses it into the same KafkaConfig),
    in a JVM with the broker's options: a setting Kafka refuses, or options with which Java
    cannot start or exits at once instead of running Kafka, end the start with one sentence
    naming the variable, before anything is formatted. Without such variables nothing is run:
    the shared files are tested as they are."""
    settings = environment_settings()
    jvm = jvm_variables()
    if not settings and not jvm:
        return
    try:
        result = subprocess.run(java_base(cp, state) + ["kafka.tools.StorageTool", "info", "-c",
                                                        str(state.config)],
                                capture_output=True, text=True, errors="replace",
                                stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        given = ", ".join(f"{v}={os.environ[v]!r}" for v in jvm) or "no JVM options"
        raise LauncherError(f"Java did not finish reading the broker's settings within "
                            f"{timeout:g} s with {given}: an option may make it wait (a "
                            "debugger's suspend=y?)") from None
    refusal = refused_setting(result.stdout + result.stderr, settings, jvm)
    if refusal:
        raise LauncherError(refusal)


# Lines with which Java says that it could not create its VM, which tell nothing of the cause.
JVM_BOILERPLATE = ("Error: Could not create the Java Virtual Machine.",
                   "Error: A fatal exception has occurred. Program will exit.",
                   "Error occurred during initialization of VM")
# What only a JVM that ran Kafka prints: StorageTool info's findings, a stack trace through
# Kafka's (or Scala's) classes, a refusal of a setting.
KAFKA_RAN = re.compile(r"^Found (problems?|log director(y|ies)|metadata)\b"
                       r"|^\s+at (kafka|org\.apache\.kafka|scala)\."
                       r"|(ConfigException|IllegalArgumentException): ", re.M)


def last_line(output):
    """The last line of a JVM's output that tells something (not Java's closing boilerplate)."""
    lines = [line.strip() for line in output.splitlines()
             if line.strip() and line.strip() not in JVM_BOILERPLATE]
    return lines[-1] if lines else None


def jvm_exited_sentence(output, jvm, code=None):
    """One sentence: Java exited at once with the options of `jvm` (variable names), with its
    last line of `output`."""
    given = ", ".join(f"{v}={os.environ[v]!r}" for v in jvm)
    line = last_line(output)
    said = f"its last line: {line}" if line else "it printed nothing"
    exited = "exited at once" if code is None else f"exited at once (code {code})"
    return (f"Java {exited} with {given} instead of running Kafka ({said}): fix or unset "
            f"{' and '.join(jvm)}")


def refused_setting(output, settings, jvm):
    """One sentence naming the variable behind what Java or Kafka refused in `output`, or None.
    With JVM options set (`jvm`), output in which Kafka never ran means that Java exited at
    once because of them."""
    if "Could not create the Java Virtual Machine" in output \
            or "Error occurred during initialization of VM" in output:
        given = ", ".join(f"{v}={os.environ[v]!r}" for v in jvm) or "its options"
        return f"Java refuses {given}: {(last_line(output) or 'no reason given').rstrip('.')}"
    if jvm and not KAFKA_RAN.search(output):
        return jvm_exited_sentence(output, jvm)
    match = re.search(r"ConfigException: Invalid value (.*) for configuration (\S+): (.*)",
                      output)
    if match and match[2] in settings:
        variable, value = settings[match[2]]
        return f"Kafka refuses {variable}={value!r} ({match[2]}): {match[3].rstrip('.')}"
    match = re.search(r"(?:ConfigException|IllegalArgumentException): (.*)", output)
    if match:
        given = ", ".join(variable for variable, _value in settings.values())
        return (f"Kafka refuses its settings with {given} set: {match[1].rstrip('.')}"
                if given else f"Kafka refuses its settings: {match[1].rstrip('.')}")
    return None


def default_state_dir(port):
    """broker/.run for the usual port; another port's broker keeps apart in broker/.run-PORT."""
    if os.environ.get("P7_BROKER_STATE"):
        return Path(os.environ["P7_BROKER_STATE"])
    return BROKER_DIR / (".run" if port == DEFAULT_PORT else f".run-{port}")


class State:
    """The folder that holds one broker's data, logs, generated config and pid file."""

    def __init__(self, root):
        self.root = Path(root).resolve()
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.config = self.root / "server.properties"
        self.pid_file = self.root / "broker.pid"
        self.port_file = self.root / "broker.port"
        self.console_log = self.logs / "broker.out"
        self.server_log = self.logs / "server.log"

    def pid(self):
        """The pid of the broker this folder's pid file names, if that broker still runs.
        A stale pid file (the broker died, its pid now another process's) counts as none."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self.is_our_broker(pid) else None

    def is_our_broker(self, pid):
        """Whether `pid` is java running kafka.Kafka with this folder's config, judged by its
        command line: the only safe test before signalling a whole process group."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            return False  # gone (or not Linux, where the launcher does not run)
        return (bool(args) and os.path.basename(args[0]).startswith("java")
                and "kafka.Kafka" in args and str(self.config) in args)

    def port(self):
        """The port of the broker last started here, None when none is on record."""
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


def write_config(state, port, controller_port, listen_host, node_id=1, voters=None,
                 shared=(BASE_CONFIG,), internal=None):
    """The shared broker settings (`shared`, later files winning) plus what differs per node:
    its id, where it listens, its quorum and where it stores.

    internal: (host, port) of a second listener for a node whose peers run elsewhere (another
    container): they replicate through it and reach its controller on `listen_host`, and
    clients beside them use it too. Kafka answers a client with the addresses of the listener
    it came in on, so a client on the host (PLAINTEXT, localhost) and one in the compose network
    (INTERNAL, the container's name) are each sent addresses they can reach."""
    voters = voters or f"1@127.0.0.1:{controller_port}"
    listeners = [f"PLAINTEXT://{listen_host}:{port}"]
    # Clients always reach the PLAINTEXT listener as localhost: natively, and from the host
    # through docker's published port.
    advertised = [f"PLAINTEXT://localhost:{port}"]
    controller_host, internal_settings = "127.0.0.1", []
    if internal:
        host, internal_port = internal
        listeners.append(f"INTERNAL://{listen_host}:{internal_port}")
        advertised.append(f"INTERNAL://{host}:{internal_port}")
        controller_host = listen_host
        internal_settings = [
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "INTERNAL:PLAINTEXT",
            "inter.broker.listener.name=INTERNAL",
        ]
    listeners.append(f"CONTROLLER://{controller_host}:{controller_port}")
    overrides = [
        "",
        "# ---- added by broker/launcher.py for this node ----",
        f"node.id={node_id}",
        f"listeners={','.join(listeners)}",
        f"advertised.listeners={','.join(advertised)}",
        *internal_settings,
        f"controller.quorum.voters={voters}",
        f"log.dirs={state.data}",
    ]
    state.root.mkdir(parents=True, exist_ok=True)
    state.logs.mkdir(parents=True, exist_ok=True)
    settings = "\n".join(path.read_text() for path in shared)
    from_env = environment_settings()
    if from_env:
        # After the shared files (Kafka takes a setting's last value), before what is per node.
        settings += "\n".join(["", "# ---- KAFKA_* variables, added by broker/launcher.py ----"]
                              + [f"{name}={value.replace(chr(92), chr(92) * 2)}"
                                 for name, (_variable, value) in from_env.items()]) + "\n"
    state.config.write_text(settings + "\n".join(overrides) + "\n")


def java_base(cp, state):
    return [java_command(), *jvm_options(), "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG_CONFIG}", f"-Dkafka.logs.dir={state.logs}",
            "-cp", cp]


def new_cluster_id():
    # One id in 64 would start with "-", which kafka-storage's argument parser takes for an
    # option ("argument --cluster-id/-t: expected one argument"); Kafka's own ids avoid it too.
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


def format_storage(state, cp, cluster_id=None):
    """Format KRaft storage once; later starts keep the existing data. The nodes of a cluster
    share `cluster_id`; a single broker makes up its own."""
    if (state.data / "meta.properties").exists():
        return
    cluster_id = cluster_id or new_cluster_id()
    result = subprocess.run(
        java_base(cp, state) + ["kafka.tools.StorageTool", "format", "-t", cluster_id,
                                "-c", str(state.config)],
        capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise LauncherError(f"formatting Kafka storage in {state.data} failed:\n{tail}")


# ---------------------------------------------------------------- commands

def start(args):
    state = State(args.state_dir)
    port = args.port
    controller_port = args.controller_port or port + 1

    if not args.foreground:
        reused = reuse_running_broker(state, port)
        if reused:
            print(reused)
            return 0
    check_environment()
    require_free_ports(port, controller_port,
                       *([args.internal_listener[1]] if args.internal_listener else []))

    cp = classpath()
    write_start_config(state, args, port, controller_port)
    check_settings(cp, state)
    format_storage(state, cp, args.cluster_id)
    command = java_base(cp, state) + ["kafka.Kafka", str(state.config)]

    if args.foreground:
        # The container's main process: java replaces us, so `docker stop` signals it directly.
        node = f"node {args.node_id} of {args.quorum_voters}, " if args.quorum_voters else ""
        print(f"launcher: Kafka {kafka_version()} on {args.listen_host}:{port}, {node}"
              f"log in {state.server_log}", flush=True)
        os.execv(command[0], command)

    process = launch(state, cp, port)
    wait_until_ready(state, process, port, args.timeout)
    print(f"launcher: Kafka {kafka_version()} broker ready on localhost:{port} "
          f"(pid {process.pid}); log: {state.server_log}")
    return 0


def check_environment():
    """BadInput, before anything is written, for the KAFKA_* variables a broker start reads
    (its settings, its JVM options, KAFKA_HOME) when one cannot be used."""
    environment_settings()
    jvm_options()
    environment_text("KAFKA_HOME")


def write_start_config(state, args, port, controller_port):
    """The config of `start`: the single broker's, or (with the node options) that of one node
    of a cluster whose other nodes run elsewhere."""
    write_config(state, port, controller_port, args.listen_host, args.node_id,
                 args.quorum_voters,
                 shared=(BASE_CONFIG, CLUSTER_CONFIG) if args.cluster else (BASE_CONFIG,),
                 internal=args.internal_listener)


def require_free_ports(*ports):
    for busy in ports:
        if port_is_open(busy):
            raise LauncherError(f"port {busy} is held by another program: stop it, or start the "
                                "broker on another port with --port")


def launch(state, cp, port):
    """Start the broker of `state` in the background, in its own session (so that a Ctrl-C in
    the terminal that started it does not stop it), with its pid and port on record."""
    command = java_base(cp, state) + ["kafka.Kafka", str(state.config)]
    offsets = log_offsets(state)
    with open(state.console_log, "ab") as console:
        process = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    process.log_offsets = offsets  # where this start's lines begin in its logs
    state.pid_file.write_text(f"{process.pid}\n")
    state.port_file.write_text(f"{port}\n")
    return process


def reuse_running_broker(state, port):
    """A message if a broker already serves the port (ours or anyone's), else None."""
    pid = state.pid()
    if pid and state.port() == port:
        deadline = time.monotonic() + START_TIMEOUT_SEC
        while time.monotonic() < deadline and state.pid():
            if broker_is_ready(port):
                return (f"launcher: reusing the broker already running on localhost:{port} "
                        f"(pid {pid})")
            time.sleep(0.2)
    if metadata_answer("127.0.0.1", port):
        return f"launcher: reusing the Kafka broker already answering on localhost:{port}"
    return None


def wait_until_ready(state, process, port, timeout, brokers=1):
    """Until the broker answers; after WAIT_QUIET_SEC a progress line says how long it has been
    and where its log is."""
    started = time.monotonic()
    deadline = started + timeout
    progress = Progress()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            progress.clear()
            state.pid_file.unlink(missing_ok=True)
            raise startup_exit(state, process, f"the broker on port {port}")
        if broker_is_ready(port, brokers):
            progress.clear()
            return
        waited = time.monotonic() - started
        if waited >= WAIT_QUIET_SEC:
            progress.show(f"launcher: waiting for the broker on localhost:{port}, {waited:.0f} s "
                          f"of at most {timeout:g}; its log: {state.server_log}")
        time.sleep(0.2)
    progress.clear()
    stop_process(process.pid)
    state.pid_file.unlink(missing_ok=True)
    raise LauncherError(f"the broker did not answer on localhost:{port} within {timeout} s."
                        + log_tail(state, getattr(process, "log_offsets", None)))


def log_offsets(state):
    """{log: its size}, where the lines of a start about to happen will begin."""
    return {log: (log.stat().st_size if log.exists() else 0)
            for log in (state.server_log, state.console_log)}


def log_text(log, offsets=None):
    """What `log` got since `offsets` (all of it without them; all of it too when it is smaller
    than then, rotated since)."""
    try:
        with open(log, "rb") as f:
            start = (offsets or {}).get(log, 0)
            if f.seek(0, os.SEEK_END) < start:
                start = 0
            f.seek(start)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def log_tail(state, offsets=None):
    """The last lines of the broker's log, else of its console output; with `offsets` (from
    log_offsets) only what one start wrote."""
    for log in (state.server_log, state.console_log):
        text = log_text(log, offsets)
        if text.strip():
            lines = text.splitlines()[-LOG_LINES_ON_FAILURE:]
            return f" Last lines of {log}:\n" + "\n".join(lines)
    return ""


def startup_exit(state, process, what):
    """The error for a broker `process` that exited before it answered: one sentence when Java
    exited at once because of KAFKA_OPTS or KAFKA_HEAP_OPTS (nothing of this start shows that
    Kafka ran: no line in its log, none of Kafka's in its console output), else the last lines
    of this start's log."""
    offsets = getattr(process, "log_offsets", None)
    console = log_text(state.console_log, offsets)
    jvm = jvm_variables()
    if jvm and not log_text(state.server_log, offsets).strip() and not KAFKA_RAN.search(console):
        return LauncherError(jvm_exited_sentence(console, jvm, process.returncode))
    return LauncherError(f"{what} exited during startup (code {process.returncode})."
                         + log_tail(state, offsets))


def stop_process(pid):
    """SIGTERM (Kafka shuts down cleanly on it), SIGKILL if it takes too long."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SEC
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while process_alive(pid):
        time.sleep(0.1)


def process_alive(pid):
    try:
        # Reap it if it is our child (the launcher that started it may still be running).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has stopped all the same.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop(args):
    state = State(args.state_dir)
    pid = state.pid()
    if pid is None:
        state.pid_file.unlink(missing_ok=True)
        print("launcher: no broker started by this launcher is running")
        return 0
    port = state.port()
    stop_process(pid)
    state.pid_file.unlink(missing_ok=True)
    deadline = time.monotonic() + STOP_TIMEOUT_SEC
    while port and port_is_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"launcher: stopped the broker (pid {pid})" + (f"; port {port} is free" if port else ""))
    return 0


def status(args):
    state = State(args.state_dir)
    pid = state.pid()
    port = (state.port() if pid else None) or port_of(args)
    if broker_is_ready(port):
        owner = f"pid {pid}" if pid else "not started by this launcher"
        print(f"launcher: a broker answers on localhost:{port} ({owner})")
        return 0
    print(f"launcher: no broker answers on localhost:{port}")
    return 1


def fetch(args):
    print(f"launcher: Kafka {kafka_version()} jars in {classpath().rstrip('/*')}")
    return 0


# ---------------------------------------------------------------- Kafka's command-line tools

# The four tools offered, by the names of Kafka's bin/*.sh scripts, and the classes those scripts
# run in this Kafka version (the kafka-tools jar, fetched with the broker through pom.xml).
TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
}
TOOLS_LOG_CONFIG = BROKER_DIR / "tools-log4j2.properties"
TOOLS_HEAP = "256m"  # what Kafka's kafka-run-class.sh gives a tool without KAFKA_HEAP_OPTS
# Options after which a tool needs no --bootstrap-server from us.
TOOLS_OWN_ADDRESS = ("--bootstrap-server", "--bootstrap-controller", "--help", "--version")


def run_tool(argv):
    """`tool NAME ARGS...`: Kafka's tool NAME with ARGS, in place of this process (its output,
    exit code and Ctrl-C are the tool's own). Unless ARGS give an address, the tool is pointed
    at KAFKA_BOOTSTRAP (default localhost:9092), like the programs."""
    if not argv or argv[0] not in TOOLS:
        given = f"{argv[0]!r} is not" if argv else "name"
        raise LauncherError(f"{given} one of the Kafka tools offered here: "
                            f"{', '.join(TOOLS)} (for example `launcher.py tool kafka-topics "
                            "--list`)")
    name, arguments = argv[0], argv[1:]
    if not any(argument.split("=", 1)[0] in TOOLS_OWN_ADDRESS for argument in arguments):
        arguments = ["--bootstrap-server", tool_bootstrap(), *arguments]
    try:
        heap = shlex.split(environment_text("KAFKA_HEAP_OPTS") or f"-Xmx{TOOLS_HEAP}")
    except ValueError as err:
        raise LauncherError(f"KAFKA_HEAP_OPTS cannot be split into Java options ({err})") \
            from None
    command = [java_command(), *heap, "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={TOOLS_LOG_CONFIG}", "-cp", classpath(),
               TOOLS[name], *arguments]
    sys.stdout.flush()
    os.execv(command[0], command)


# ---------------------------------------------------------------- the three-node cluster

class Cluster:
    """Three combined broker+controller nodes on this machine, one folder each under `root`,
    forming one KRaft quorum. The ports are on record in the root folder, so that stop and
    status need no arguments and a restart finds its nodes again."""

    def __init__(self, root, ports=None, controller_ports=None):
        self.root = Path(root).resolve()
        self.record = self.root / "cluster.ports"
        self.id_file = self.root / "cluster.id"
        recorded = self.recorded_ports()
        if ports and recorded and recorded[0] != list(ports):
            raise LauncherError(
                f"{self.root} holds a cluster on ports {','.join(map(str, recorded[0]))}, not "
                f"{','.join(map(str, ports))}: stop it and wipe it (`make clean`), or give "
                "another --state-dir")
        self.ports, self.controller_ports = recorded or (
            list(ports or CLUSTER_PORTS),
            list(controller_ports or range(max(ports or CLUSTER_PORTS) + 1,
                                           max(ports or CLUSTER_PORTS) + 4)))
        if len(self.ports) != 3 or len(self.controller_ports) != 3 \
                or len(set(self.ports + self.controller_ports)) != 6:
            raise LauncherError("a cluster needs three client ports and three other controller "
                                "ports, all different")
        self.states = [State(self.root / f"node-{n}") for n in (1, 2, 3)]
        self.voters = ",".join(f"{n}@127.0.0.1:{c}"
                               for n, c in enumerate(self.controller_ports, start=1))

    def recorded_ports(self):
        try:
            lines = self.record.read_text().split()
            return [int(p) for p in lines[0].split(",")], [int(p) for p in lines[1].split(",")]
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def remember(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.record.write_text(",".join(map(str, self.ports)) + "\n"
                               + ",".join(map(str, self.controller_ports)) + "\n")
        if not self.id_file.exists():
            self.id_file.write_text(new_cluster_id() + "\n")
        return self.id_file.read_text().strip()

    def nodes(self):
        """(node id, client port, controller port, state) of each node."""
        return [(n, port, controller, state) for n, port, controller, state
                in zip((1, 2, 3), self.ports, self.controller_ports, self.states)]

    def bootstrap(self):
        return ",".join(f"localhost:{port}" for port in self.ports)


def cluster_start(args):
    cluster = Cluster(args.state_dir, args.ports, args.controller_ports)
    check_environment()
    cluster_id = cluster.remember()
    started = {}  # port -> the process of a node started now
    try:
        for node_id, port, controller_port, state in cluster.nodes():
            if state.pid():
                continue  # running: a restart would cost it its leaderships for nothing
            require_free_ports(port, controller_port)
            cp = classpath()
            write_config(state, port, controller_port, "127.0.0.1", node_id, cluster.voters,
                         shared=(BASE_CONFIG, CLUSTER_CONFIG))
            if not started:
                check_settings(cp, state)  # the nodes share their settings: once is enough
            format_storage(state, cp, cluster_id)
            started[port] = launch(state, cp, port)
        # A node answers only once the quorum has a leader that let it in: wait for every node
        # to name all three.
        deadline = time.monotonic() + args.timeout
        for _node_id, port, _controller_port, state in cluster.nodes():
            process = started.get(port)
            while not broker_is_ready(port, brokers=3):
                if process and process.poll() is not None:
                    raise startup_exit(state, process, f"the node on port {port}")
                if time.monotonic() > deadline:
                    raise LauncherError(
                        f"the node on port {port} did not see all three nodes within "
                        f"{args.timeout:g} s."
                        + log_tail(state, getattr(process, "log_offsets", None)))
                time.sleep(0.2)
    except BaseException:
        for _node_id, port, _controller_port, state in cluster.nodes():
            if port in started:
                stop_process(started[port].pid)
                state.pid_file.unlink(missing_ok=True)
        raise
    what = (f"started node{'s' if len(started) > 1 else ''} on port "
            f"{', '.join(map(str, started))}" if started else "all three nodes were running")
    print(f"launcher: Kafka {kafka_version()} cluster ready at {cluster.bootstrap()} ({what}); "
          f"logs in {cluster.root}/node-*/logs")
    return 0


def cluster_stop(args):
    cluster = Cluster(args.state_dir)
    running = [(state, pid) for state in cluster.states if (pid := state.pid())]
    if not running:
        print(f"launcher: no node of the cluster in {cluster.root} is running")
        return 0
    # All at once: a node stopped last of three would wait in vain for a quorum to hand over to.
    for _state, pid in running:
        os.killpg(pid, signal.SIGTERM)
    for state, pid in running:
        stop_process(pid)
        state.pid_file.unlink(missing_ok=True)
    print(f"launcher: stopped {len(running)} node{'s' if len(running) > 1 else ''} of the "
          f"cluster at {cluster.bootstrap()}")
    return 0


def cluster_status(args):
    cluster = Cluster(args.state_dir)
    answering = [port for port in cluster.ports if broker_is_ready(port, brokers=3)]
    for node_id, port, _controller_port, state in cluster.nodes():
        pid = state.pid()
        print(f"launcher: node {node_id} on localhost:{port}: "
              + (f"running (pid {pid})" if pid else "not running")
              + (", sees all three nodes" if port in answering else ""))
    return 0 if len(answering) == 3 else 1


def port_number(text):
    if not re.fullmatch(r"[0-9]+", text) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


def port_list(text):
    try:
        ports = [int(port) for port in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of ports")
    if len(ports) != 3 or not all(0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"{text!r}: give three ports, like 9192,9193,9194")
    return ports


def host_and_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, like kafka1:19092")
    return host, int(port)


def quorum_voters(text):
    """Kafka's controller.quorum.voters: ID@HOST:PORT for each node, comma-separated."""
    for voter in text.split(","):
        node_id, _, address = voter.partition("@")
        try:
            host_and_port(address)
        except argparse.ArgumentTypeError:
            node_id = ""
        if not node_id.isdigit():
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a list of ID@HOST:PORT, like 1@kafka1:9093,2@kafka2:9093")
    return text


def voter_ids(voters):
    return [int(voter.partition("@")[0]) for voter in voters.split(",")]


FLAG_VALUES = {"": False, "0": False, "false": False, "no": False,
               "1": True, "true": True, "yes": True}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Start or stop the project's Kafka broker.")
    parser.add_argument("--state-dir", default=None,
                        help="folder for the broker's data, logs and pid file (default: "
                             "$P7_BROKER_STATE, else broker/.run, or broker/.run-PORT for a "
                             "port other than 9092)")
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="start the broker, or reuse a running one")
    # A compose node needs P7_PORT: its programs' KAFKA_BOOTSTRAP names the cluster's hosts.
    start_parser.add_argument("--port", type=port_number,
                              default=os.environ.get("P7_PORT") or None,
                              help="default: $P7_PORT, else the port of $KAFKA_BOOTSTRAP, else "
                                   "9092")
    start_parser.add_argument("--controller-port", type=port_number,
                              default=os.environ.get("P7_CONTROLLER_PORT") or None,
                              help="KRaft controller port (default: $P7_CONTROLLER_PORT, else "
                                   "port + 1)")
    start_parser.add_argument("--listen-host",
                              default=os.environ.get("P7_LISTEN_HOST", "127.0.0.1"),
                              help="interface to listen on (0.0.0.0 in Docker)")
    start_parser.add_argument("--timeout", type=float, default=START_TIMEOUT_SEC,
                              help="seconds to wait for the broker to answer")
    start_parser.add_argument("--foreground", action="store_true",
                              help="run the broker in this process (the container's entry point)")
    # One node of a cluster whose nodes run elsewhere (compose.yaml's containers); each option
    # defaults to its P7_* variable, so that compose.yaml gives them as environment.
    node = start_parser.add_argument_group("one node of a cluster (compose.yaml)")
    node.add_argument("--node-id", type=int, default=os.environ.get("P7_NODE_ID") or 1,
                      help="this node's id (default: $P7_NODE_ID, else 1)")
    node.add_argument("--quorum-voters", type=quorum_voters,
                      default=os.environ.get("P7_QUORUM_VOTERS") or None,
                      help="every controller as ID@HOST:PORT,... (default: $P7_QUORUM_VOTERS, "
                           "else this broker alone)")
    node.add_argument("--cluster-id", default=os.environ.get("P7_CLUSTER_ID") or None,
                      help="the id all of a cluster's nodes are formatted with (default: "
                           "$P7_CLUSTER_ID, else a new one)")
    cluster_flag = os.environ.get("P7_CLUSTER", "").lower()
    if cluster_flag not in FLAG_VALUES:
        parser.error(f"P7_CLUSTER={cluster_flag!r} must be 1 (the cluster's settings) or 0")
    node.add_argument("--cluster", action="store_true", default=FLAG_VALUES[cluster_flag],
                      help="add broker/cluster.properties, the cluster's durability settings "
                           "(default: $P7_CLUSTER=1)")
    node.add_argument("--internal-listener", type=host_and_port,
                      default=os.environ.get("P7_INTERNAL_LISTENER") or None,
                      help="HOST:PORT where the other nodes and clients beside them reach this "
                           "one (default: $P7_INTERNAL_LISTENER, else none)")
    stop_parser = commands.add_parser("stop", help="stop the broker this launcher started")
    stop_parser.add_argument("--port", type=port_number, default=None,
                             help="the port whose broker folder to look in (default: the port "
                                  "of $KAFKA_BOOTSTRAP, else 9092)")
    status_parser = commands.add_parser("status", help="exit 0 when a broker answers")
    status_parser.add_argument("--port", type=port_number, default=None,
                               help="default: the port of the broker started in the state "
                                    "folder, else of $KAFKA_BOOTSTRAP, else 9092")
    commands.add_parser("fetch", help="fetch the broker's jars from Maven Central and exit")
    commands.add_parser("tool", help=f"tool NAME ARGS...: one of Kafka's tools "
                                     f"({', '.join(TOOLS)}), pointed at KAFKA_BOOTSTRAP "
                                     "(default localhost:9092)")
    cluster_parser = commands.add_parser(
        "cluster", help="start the three-node cluster's nodes that are not running (default "
                        "state folder broker/.cluster)")
    cluster_parser.add_argument("--ports", type=port_list, default=None,
                                help="the nodes' client ports (default 9192,9193,9194)")
    cluster_parser.add_argument("--controller-ports", type=port_list, default=None,
                                help="their KRaft controller ports (default: the three after "
                                     "the highest client port)")
    cluster_parser.add_argument("--timeout", type=float, default=START_TIMEOUT_SEC,
                                help="seconds to wait for all three nodes to answer")
    commands.add_parser("cluster-stop", help="stop the cluster's nodes (data kept)")
    commands.add_parser("cluster-status", help="exit 0 when all three nodes answer")
    args = parser.parse_args(argv)
    if args.command == "start" and args.quorum_voters \
            and args.node_id not in voter_ids(args.quorum_voters):
        parser.error(f"node {args.node_id} is not among the quorum voters "
                     f"{args.quorum_voters}: give its id with --node-id (P7_NODE_ID)")
    # The port comes from KAFKA_BOOTSTRAP only where it is needed and not given (BadInput when
    # that cannot be served): start's port, and the folder of stop and status.
    if args.command == "start":
        port_of(args)
    if args.state_dir is None:
        if args.command.startswith("cluster"):
            args.state_dir = CLUSTER_DIR
        elif args.command == "fetch" or os.environ.get("P7_BROKER_STATE"):
            args.state_dir = default_state_dir(DEFAULT_PORT)
        else:
            args.state_dir = default_state_dir(port_of(args))
    return args


def port_of(args):
    """The port of start, stop or status: --port (for start, else P7_PORT), else the port of
    KAFKA_BOOTSTRAP (default_port), read once."""
    if args.port is None:
        args.port = default_port()
    return args.port


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    handlers = {"start": start, "stop": stop, "status": status, "fetch": fetch,
                "cluster": cluster_start, "cluster-stop": cluster_stop,
                "cluster-status": cluster_status}
    try:
        if argv[:1] == ["tool"]:
            # Everything after the tool's name is the tool's: no parsing of ours in between.
            return run_tool(argv[1:])
        args = parse_args(argv)
        return handlers[args.command](args)
    except BadInput as err:
        print(f"launcher: error: {err}", file=sys.stderr)
        return 2
    except LauncherError as err:
        print(f"launcher: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
