"""broker/launcher.py's generated config, no broker needed: the single broker's stays as it was,
and each node of compose.yaml gets from its environment (read as compose.yaml says it, with the
image's own ENV) the settings of one node of the three-node quorum. make docker-test runs that
cluster for real (dockertests/test_compose.py)."""

import re

import pytest
import yaml

from broker import launcher
from tools.harness import ROOT

IMAGE_ENV = {"P7_LISTEN_HOST": "0.0.0.0"}   # the Dockerfile's ENV (P7_BROKER_STATE: tmp_path)
NODE_VARIABLES = ("P7_NODE_ID", "P7_QUORUM_VOTERS", "P7_CLUSTER_ID", "P7_CLUSTER",
                  "P7_INTERNAL_LISTENER", "P7_PORT", "P7_CONTROLLER_PORT", "P7_LISTEN_HOST",
                  "KAFKA_BOOTSTRAP")


def compose_services():
    """compose.yaml's services, ${VAR:-default} read as Compose does with VAR unset."""
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", (ROOT / "compose.yaml").read_text())
    return yaml.safe_load(text)["services"]


def effective(config_path):
    """The settings Kafka takes from a properties file: the last assignment of each key wins."""
    settings = {}
    for line in config_path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def generated_config(monkeypatch, tmp_path, env):
    """What `launcher.py start` writes with `env` as its environment."""
    for name in NODE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("P7_BROKER_STATE", str(tmp_path))
    args = launcher.parse_args(["start", "--foreground"])
    state = launcher.State(args.state_dir)
    launcher.write_start_config(state, args, args.port, args.controller_port or args.port + 1)
    return args, effective(state.config)


@pytest.mark.parametrize("service", ["kafka1", "kafka2", "kafka3"])
def test_each_compose_node_is_one_voter_of_the_same_cluster(monkeypatch, tmp_path, service):
    services = compose_services()
    env = dict(IMAGE_ENV, **services[service]["environment"])
    args, config = generated_config(monkeypatch, tmp_path, env)
    node_id = int(env["P7_NODE_ID"])
    host_port = int(env["P7_PORT"])

    assert config["node.id"] == str(node_id)
    assert config["listeners"] == (f"PLAINTEXT://0.0.0.0:{host_port},INTERNAL://0.0.0.0:19092,"
                                   "CONTROLLER://0.0.0.0:9093")
    # The host's clients come in on PLAINTEXT and are sent localhost:PORT, published as itself;
    # the other nodes and `compose exec` clients are sent the container's name.
    assert config["advertised.listeners"] == (f"PLAINTEXT://localhost:{host_port},"
                                              f"INTERNAL://{service}:19092")
    assert services[service]["ports"] == [f"{host_port}:{host_port}"]
    assert config["inter.broker.listener.name"] == "INTERNAL"
    assert "INTERNAL:PLAINTEXT" in config["listener.security.protocol.map"].split(",")
    assert config["controller.quorum.voters"] == "1@kafka1:9093,2@kafka2:9093,3@kafka3:9093"
    assert f"{node_id}@{service}:9093" in config["controller.quorum.voters"].split(",")
    # The cluster's durability rules, on top of the single broker's settings.
    assert config["default.replication.factor"] == "3"
    assert config["min.insync.replicas"] == "2"
    assert config["offsets.topic.replication.factor"] == "3"
    assert config["unclean.leader.election.enable"] == "false"
    assert config["log.dirs"] == str(tmp_path / "data")
    assert args.cluster_id and not args.cluster_id.startswith("-")
    # The programs run with `compose exec` reach every node, inside the compose network.
    assert env["KAFKA_BOOTSTRAP"] == "kafka1:19092,kafka2:19092,kafka3:19092"
    assert env["P7_REPLICATION_FACTOR"] == "3"


def test_compose_nodes_differ_only_in_id_ports_and_folders():
    services = compose_services()
    assert sorted(services) == ["kafka1", "kafka2", "kafka3"]
    differing = {"P7_NODE_ID", "P7_PORT", "P7_INTERNAL_LISTENER"}
    shared = [{k: v for k, v in s["environment"].items() if k not in differing}
              for s in services.values()]
    assert shared[0] == shared[1] == shared[2]
    for name in differing:
        assert len({s["environment"][name] for s in services.values()}) == 3, name
    volumes = [s["volumes"] for s in services.values()]
    assert len({v[0] for v in volumes}) == 3, "each node needs a data volume of its own"
    assert all(v[0].endswith(":/var/lib/p7-kafka") for v in volumes)
    assert all(v[1] == "./files:/files" for v in volumes)
    assert all(s["image"] == "p7" and s["build"] == "." for s in services.values())


def test_the_single_broker_config_is_as_before(monkeypatch, tmp_path):
    """No node options (the native broker, the image's CMD): one voter on localhost, no internal
    listener, none of the cluster's settings."""
    _args, config = generated_config(monkeypatch, tmp_path, {"KAFKA_BOOTSTRAP": "localhost:9592"})
    assert config["node.id"] == "1"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9592,CONTROLLER://127.0.0.1:9593"
    assert config["advertised.listeners"] == "PLAINTEXT://localhost:9592"
    assert config["inter.broker.listener.name"] == "PLAINTEXT"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:9593"
    assert config["min.insync.replicas"] == "1"
    assert "default.replication.factor" not in config


def test_the_image_copies_the_cluster_settings():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY [^\n]*broker/cluster\.properties[^\n]*/opt/p7/broker/$", dockerfile,
                     re.M)


@pytest.mark.parametrize("env, message", [
    ({"P7_NODE_ID": "4", "P7_QUORUM_VOTERS": "1@kafka1:9093,2@kafka2:9093,3@kafka3:9093"},
     "node 4 is not among the quorum voters"),
    ({"P7_QUORUM_VOTERS": "kafka1:9093"}, "is not a list of ID@HOST:PORT"),
    ({"P7_INTERNAL_LISTENER": "kafka1"}, "is not HOST:PORT"),
    ({"P7_NODE_ID": "one"}, "invalid int value: 'one'"),
    ({"P7_PORT": "91x2"}, "argument --port: '91x2' is not a port (1 to 65535)"),
    ({"P7_PORT": "65536"}, "argument --port: '65536' is not a port (1 to 65535)"),
    ({"P7_CONTROLLER_PORT": "0"}, "argument --controller-port: '0' is not a port"),
    ({"P7_CLUSTER": "on"}, "P7_CLUSTER='on' must be 1"),
])
def test_bad_node_settings_are_a_clear_error(monkeypatch, tmp_path, capsys, env, message):
    with pytest.raises(SystemExit) as exit_info:
        generated_config(monkeypatch, tmp_path, env)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "server.properties").exists()
