"""broker/launcher.py's three-node cluster, without starting it: ports, quorum and the
settings each node gets."""

import argparse

import pytest

from broker import launcher


def test_default_cluster_ports_and_quorum(tmp_path):
    cluster = launcher.Cluster(tmp_path, [9192, 9193, 9194])
    assert cluster.controller_ports == [9195, 9196, 9197]
    assert cluster.voters == "1@127.0.0.1:9195,2@127.0.0.1:9196,3@127.0.0.1:9197"
    assert cluster.bootstrap() == "localhost:9192,localhost:9193,localhost:9194"


def test_the_ports_on_record_win_and_others_are_refused(tmp_path):
    launcher.Cluster(tmp_path, [20001, 20002, 20003]).remember()
    assert launcher.Cluster(tmp_path).ports == [20001, 20002, 20003]
    with pytest.raises(launcher.LauncherError, match="holds a cluster on ports 20001"):
        launcher.Cluster(tmp_path, [9192, 9193, 9194])


def test_overlapping_ports_are_refused(tmp_path):
    with pytest.raises(launcher.LauncherError, match="all different"):
        launcher.Cluster(tmp_path, [9192, 9193, 9194], [9194, 9195, 9196])


def test_a_node_gets_the_shared_settings_then_only_its_own(tmp_path):
    cluster = launcher.Cluster(tmp_path, [9192, 9193, 9194])
    node_id, port, controller_port, state = cluster.nodes()[1]
    launcher.write_config(state, port, controller_port, "127.0.0.1", node_id, cluster.voters,
                          shared=(launcher.BASE_CONFIG, launcher.CLUSTER_CONFIG))
    settings = {}
    for line in state.config.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings[key] = value  # a later line wins, as in Java's Properties
    assert settings["node.id"] == "2"
    assert settings["listeners"] == "PLAINTEXT://127.0.0.1:9193,CONTROLLER://127.0.0.1:9196"
    assert settings["controller.quorum.voters"] == cluster.voters
    assert settings["default.replication.factor"] == "3"
    assert settings["min.insync.replicas"] == "2"
    assert settings["unclean.leader.election.enable"] == "false"
    assert settings["offsets.topic.replication.factor"] == "3"


def test_a_port_list_must_be_three_ports():
    assert launcher.port_list("1,2,3") == [1, 2, 3]
    for text in ("1,2", "a,b,c", "1,2,70000"):
        with pytest.raises(argparse.ArgumentTypeError):
            launcher.port_list(text)
