"""tools/relay.py against servers of the test's own on this machine's loopback: bytes both ways
unchanged, many connections at once, half-closes passed on, a far end that cannot be reached or
dies, and stop() with connections open. The process far end runs relay.STDIO_PUMP here as the
grader runs it in a container (`python3 -I -S -c STDIO_PUMP PORT`)."""

import hashlib
import os
import socket
import sys
import threading

import pytest

from tools import relay
from tools.harness import wait_until

TIMEOUT = 20


class Server:
    """A TCP server on 127.0.0.1 whose every connection is handled by `handle(sock)` in a
    thread; remembers its connections' sockets."""

    def __init__(self, handle):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handle = handle
        self.accepted = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(sock)
            threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock):
        try:
            self.handle(sock)
        except OSError:
            pass

    def close(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.accepted:
            sock.close()


def echo(sock):
    """Echoes until the client's end, then ends its own side too."""
    while data := sock.recv(65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def digest_then_close(sock):
    """Reads to the client's end, then answers the sha256 of what came and closes: works only
    if the client's half-close reached it while the other direction stayed open."""
    digest = hashlib.sha256()
    while data := sock.recv(65536):
        digest.update(data)
    sock.sendall(digest.hexdigest().encode())
    sock.close()


def read_all(sock):
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def pump_dialer(port):
    return relay.command_dialer([sys.executable, "-I", "-S", "-c", relay.STDIO_PUMP, str(port)])


@pytest.fixture(params=["tcp", "process"])
def dialer(request):
    """Builds the relay's dial() to a server's port: a TCP connection, or STDIO_PUMP."""
    return {"tcp": lambda port: relay.tcp_dialer("127.0.0.1", port),
            "process": pump_dialer}[request.param]


def connect(the_relay):
    sock = socket.create_connection(("127.0.0.1", the_relay.port), timeout=TIMEOUT)
    return sock


def test_many_connections_at_once_each_get_their_own_bytes_back(dialer):
    server = Server(echo)
    with relay.Relay(dialer(server.port)).start() as the_relay:
        clients = [connect(the_relay) for _ in range(40)]
        payloads = [os.urandom(200_000) + bytes([n]) for n in range(len(clients))]
        results = [None] * len(clients)

        def exchange(n):
            sock = clients[n]
            sender = threading.Thread(target=lambda: (sock.sendall(payloads[n]),
                                                      sock.shutdown(socket.SHUT_WR)))
            sender.start()
            results[n] = read_all(sock)
            sender.join()

        workers = [threading.Thread(target=exchange, args=(n,)) for n in range(len(clients))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(TIMEOUT)
        assert [r == p for r, p in zip(results, payloads)] == [True] * len(clients)
        for sock in clients:
            sock.close()
        wait_until(lambda: the_relay.connections() == 0, TIMEOUT, "the relay to release them")
    server.close()


def test_a_half_close_reaches_the_server_and_its_answer_still_comes_back(dialer):
    server = Server(digest_then_close)
    payload = os.urandom(3_000_000)
    with relay.Relay(dialer(server.port)).start() as the_relay:
        sock = connect(the_relay)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        assert read_all(sock) == hashlib.sha256(payload).hexdigest().encode()
        sock.close()
    server.close()


def test_the_server_closing_first_ends_the_clients_stream(dialer):
    def greet_and_close(sock):
        sock.sendall(b"bye")
        sock.close()

    server = Server(greet_and_close)
    with relay.Relay(dialer(server.port)).start() as the_relay:
        sock = connect(the_relay)
        assert read_all(sock) == b"bye"
        sock.close()
        wait_until(lambda: the_relay.connections() == 0, TIMEOUT, "the relay to release it")
    server.close()


def test_a_far_end_that_does_not_answer_closes_the_client(dialer):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        with relay.Relay(dialer(port)).start() as the_relay:
            sock = connect(the_relay)
            # Refused at once (tcp) or the pump exits at once (process): either way the end.
            try:
                assert read_all(sock) == b""
            except ConnectionResetError:
                pass
            sock.close()
            wait_until(lambda: the_relay.connections() == 0, TIMEOUT, "the relay to release it")


def test_stop_ends_open_connections_and_their_processes():
    server = Server(echo)
    the_relay = relay.Relay(pump_dialer(server.port)).start()
    clients = [connect(the_relay) for _ in range(5)]
    for sock in clients:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
    assert the_relay.connections() == 5
    processes = [c.far.process for c in the_relay._connections]
    the_relay.stop()
    for sock in clients:
        try:
            assert read_all(sock) == b""
        except ConnectionResetError:
            pass
        sock.close()
    assert all(process.poll() is not None for process in processes)
    assert the_relay.connections() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", the_relay.port), timeout=2)
    server.close()


def test_a_dial_that_raises_closes_the_client_and_the_relay_goes_on():
    server = Server(echo)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError("no such command")
        return relay.tcp_dialer("127.0.0.1", server.port)()

    with relay.Relay(flaky).start() as the_relay:
        first = connect(the_relay)
        assert read_all(first) == b""
        first.close()
        second = connect(the_relay)
        second.sendall(b"hello")
        second.shutdown(socket.SHUT_WR)
        assert read_all(second) == b"hello"
        second.close()
        assert the_relay.failed_dials == 1
    server.close()
