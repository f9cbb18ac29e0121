"""KAFKA_* variables as broker settings, the apache/kafka image's way, and KAFKA_HEAP_OPTS and
KAFKA_OPTS as the JVM's options: what broker/launcher.py writes and runs, no broker needed
(tests/test_broker.py starts brokers with them, make docker-test a container)."""

import pytest

from broker import launcher
from tools.harness import ROOT


@pytest.mark.parametrize("variable, setting", [
    ("KAFKA_LOG_RETENTION_HOURS", "log.retention.hours"),
    ("KAFKA_NUM_PARTITIONS", "num.partitions"),
    ("KAFKA_LISTENER_NAME_INTERNAL_SSL__KEY___PASSWORD", "listener.name.internal.ssl_key-password"),
    ("KAFKA_CONFLUENT___SUPPORT_METRICS__ENABLE", "confluent-support.metrics_enable"),
])
def test_the_apache_kafka_image_rule(variable, setting):
    assert launcher.setting_name(variable) == setting


def config_with(monkeypatch, tmp_path, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    state = launcher.State(tmp_path)
    launcher.write_config(state, 9092, 9093, "127.0.0.1")
    return state.config.read_text()


def test_settings_come_after_the_shared_files_and_before_the_nodes(monkeypatch, tmp_path):
    text = config_with(monkeypatch, tmp_path, {"KAFKA_LOG_RETENTION_HOURS": "1",
                                               "KAFKA_NUM_PARTITIONS": "3"})
    shared = (ROOT / "broker" / "server.properties").read_text()
    assert text.startswith(shared)
    assert text.index("log.retention.hours=168") < text.index("log.retention.hours=1\n") \
        < text.index("node.id=1")
    assert "num.partitions=3\n" in text


def test_variables_that_are_no_settings_stay_out(monkeypatch, tmp_path):
    text = config_with(monkeypatch, tmp_path, {
        "KAFKA_BOOTSTRAP": "localhost:9092", "KAFKA_HEAP_OPTS": "-Xmx1g", "KAFKA_OPTS": "-Da=b",
        "KAFKA_HOME": "/opt/kafka", "KAFKA_JMX_OPTS": "-Dx"})
    assert "KAFKA_* variables" not in text
    assert "bootstrap" not in text and "heap" not in text


def test_a_backslash_reaches_kafka_as_it_was_given(monkeypatch, tmp_path):
    text = config_with(monkeypatch, tmp_path, {"KAFKA_SOME_PATH": r"C:\kafka"})
    assert "some.path=C:\\\\kafka\n" in text


@pytest.mark.parametrize("variable, value, complaint", [
    ("KAFKA_NODE_ID", "3", "KAFKA_NODE_ID would set node.id, which the launcher decides for each "
                           "node: use --node-id (P7_NODE_ID) instead"),
    ("KAFKA_LISTENERS", "PLAINTEXT://:9092", "use --port and --listen-host"),
    ("KAFKA_LOG_DIRS", "/data", "use --state-dir (P7_BROKER_STATE)"),
    ("KAFKA_LOG_RETENTION_HOURS", "1\nnode.id=5", "holds a line break"),
    ("KAFKA_LOG__", "1", "names no broker setting"),
])
def test_what_cannot_be_a_setting_is_one_sentence(monkeypatch, tmp_path, variable, value,
                                                   complaint):
    with pytest.raises(launcher.LauncherError) as refused:
        config_with(monkeypatch, tmp_path, {variable: value})
    assert complaint in str(refused.value) and "\n" not in str(refused.value)


def test_kafka_heap_opts_replaces_the_heap(monkeypatch, tmp_path):
    monkeypatch.delenv("KAFKA_OPTS", raising=False)
    monkeypatch.delenv("KAFKA_HEAP_OPTS", raising=False)
    assert launcher.jvm_options() == ["-Xmx512m", "-Xms512m"]
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "-Xmx300m -Xms300m")
    monkeypatch.setenv("KAFKA_OPTS", "-Dp7.test='a b'")
    assert launcher.jvm_options() == ["-Xmx300m", "-Xms300m", "-Dp7.test=a b"]
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "-Xmx300m '")
    with pytest.raises(launcher.LauncherError, match="KAFKA_HEAP_OPTS cannot be split"):
        launcher.jvm_options()


SETTINGS = {"log.retention.hours": ("KAFKA_LOG_RETENTION_HOURS", "abc")}


@pytest.mark.parametrize("output, sentence", [
    ('Exception in thread "main" org.apache.kafka.common.config.ConfigException: Invalid value '
     "abc for configuration log.retention.hours: Not a number of type INT\n\tat org...",
     "Kafka refuses KAFKA_LOG_RETENTION_HOURS='abc' (log.retention.hours): Not a number of type "
     "INT"),
    ("java.lang.IllegalArgumentException: requirement failed: something is off.\n\tat x",
     "Kafka refuses its settings with KAFKA_LOG_RETENTION_HOURS set: requirement failed: "
     "something is off"),
    ("Found problem:\n  /data is not formatted.\n", None),
])
def test_kafkas_refusals_are_told_by_variable(output, sentence):
    assert launcher.refused_setting(output, SETTINGS, []) == sentence


def test_javas_refusal_names_the_heap_variable(monkeypatch):
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "-Xmx5")
    output = ("Error occurred during initialization of VM\nToo small maximum heap\n")
    assert launcher.refused_setting(output, {}, ["KAFKA_HEAP_OPTS"]) == \
        "Java refuses KAFKA_HEAP_OPTS='-Xmx5': Too small maximum heap"


def test_a_compose_node_takes_kafka_variables_and_its_bootstrap_is_none(monkeypatch, tmp_path):
    """compose.yaml's environment, as a user would extend it with a KAFKA_* setting."""
    from test_launcher_config import IMAGE_ENV, compose_services, generated_config
    env = dict(IMAGE_ENV, **compose_services()["kafka1"]["environment"],
               KAFKA_LOG_RETENTION_HOURS="1")
    monkeypatch.delenv("KAFKA_LOG_RETENTION_HOURS", raising=False)
    _args, config = generated_config(monkeypatch, tmp_path, env)
    assert config["log.retention.hours"] == "1"
    assert config["min.insync.replicas"] == "2", "the cluster's settings stay"
    assert not any(key.startswith("bootstrap") for key in config)
