"""A TCP relay: connections accepted on a local address, each carried to a far end of its own.

Relay(dial) listens (127.0.0.1 and a free port by default; `port` is known once it is built)
and, once started, opens a far end for every connection it accepts with `dial()`: a TCP
connection (tcp_dialer) or the stdin and stdout of a process (command_dialer), such as a
`docker exec -i` of STDIO_PUMP in a container that has no network at all (the grader's:
harness.Container.dial_broker). A Kafka client pointed at the relay works as it would against
the broker itself, provided the broker advertises the relay's address.

What it guarantees:
- Bytes go both ways unchanged and in order, each direction in a thread of its own with
  blocking writes: a slow reader holds back only the writer of its own direction, and nothing
  is buffered beyond one read.
- A half-close is passed on: the end of one side's stream becomes a shutdown of writing towards
  the other side, and the other direction goes on until its own end.
- An error on either side (a reset, a broken pipe, a process that died) ends the connection:
  both sides are shut down. A far end that cannot be opened closes the accepted connection.
- A connection's sockets, pipes and process are released once both of its directions have
  ended, by the last of its threads: no descriptor is closed while another thread may still
  use it.
- stop() accepts nothing more, ends every connection (a process far end is killed) and returns
  once every thread of the relay is gone (or STOP_TIMEOUT has passed).

Standard library only.
"""

import contextlib
import os
import socket
import subprocess
import threading

CHUNK = 64 * 1024
BACKLOG = 128
STOP_TIMEOUT = 10           # for the threads of a stopping relay
PROCESS_EXIT_TIMEOUT = 5    # a process far end whose streams both ended, to exit on its own
ACCEPT_RETRY = 0.05         # after a failed accept (no descriptor left, an aborted handshake)

# Copies its stdin to a TCP connection to 127.0.0.1:PORT (argv[1]) and that connection's data
# to its stdout: a far end inside a container that has no network but its loopback (`python3
# -I -S -c STDIO_PUMP PORT`: isolated from the environment, the working directory and
# site-packages, so nothing of a submission's is imported). The end of stdin becomes a shutdown
# of writing to the connection; the connection's end closes stdout; it exits once both have
# ended. Any error exits at once, which the relay sees as the end of the pump's stdout.
STDIO_PUMP = """\
import os, socket, sys, threading
connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def inbound():
    try:
        while data := os.read(0, 65536):
            connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
    except OSError:
        os._exit(1)
reader = threading.Thread(target=inbound, daemon=True)
reader.start()
try:
    while data := connection.recv(65536):
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
except OSError:
    os._exit(1)
os.close(1)
reader.join()
"""


class SocketEnd:
    """One side of a connection that is a socket."""

    def __init__(self, sock):
        self.sock = sock
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read(self):
        return self.sock.recv(CHUNK)

    def write(self, data):
        self.sock.sendall(data)

    def end_writing(self):
        self.sock.shutdown(socket.SHUT_WR)

    def interrupt(self):
        """Wake a thread blocked on this socket (its read returns the end); closes nothing."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def release(self):
        self.sock.close()


class ProcessEnd:
    """One side of a connection that is a process: what is written goes to its stdin, what is
    read comes from its stdout (its stderr is dropped). In a session of its own, so that a
    Ctrl-C meant for the relay's program reaches it through the relay only."""

    def __init__(self, argv):
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, bufsize=0,
                                        start_new_session=True)

    def read(self):
        return os.read(self.process.stdout.fileno(), CHUNK)

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.process.stdin.fileno(), view):]

    def end_writing(self):
        # Only the writing direction's thread gets here, so nobody else uses stdin any more.
        self.process.stdin.close()

    def interrupt(self):
        """Kill the process: its stdout then ends and writes to its stdin fail."""
        with contextlib.suppress(OSError):
            self.process.kill()

    def release(self):
        try:
            self.process.wait(timeout=PROCESS_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()


def tcp_dialer(host, port, timeout=10):
    """dial() for a relay to HOST:PORT."""
    def dial():
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        return SocketEnd(sock)
    return dial


def command_dialer(argv):
    """dial() for a relay whose every connection is a process of its own, `argv`."""
    return lambda: ProcessEnd(list(argv))


class _Connection:
    def __init__(self, client, far, on_released):
        self.client = client
        self.far = far
        self.on_released = on_released
        self.lock = threading.Lock()
        self.running = 2            # directions not yet ended
        self.threads = [threading.Thread(target=self._copy, args=(source, sink), daemon=True,
                                         name="relay copy")
                        for source, sink in ((client, far), (far, client))]

    def start(self):
        for thread in self.threads:
            thread.start()

    def _copy(self, source, sink):
        try:
            while data := source.read():
                sink.write(data)
            sink.end_writing()
        except OSError:
            self.abort()
        finally:
            with self.lock:
                self.running -= 1
                last = self.running == 0
            if last:
                for end in (self.client, self.far):
                    with contextlib.suppress(OSError):
                        end.release()
                self.on_released(self)

    def abort(self):
        for end in (self.client, self.far):
            end.interrupt()


class Relay:
    """Connections to HOST:PORT carried to far ends opened by `dial` (see the module's
    docstring); bound on creation, accepting from start() to stop(). A context manager."""

    def __init__(self, dial=None, host="127.0.0.1", port=0):
        self.dial = dial
        self.listener = socket.create_server((host, port), backlog=BACKLOG)
        self.host, self.port = self.listener.getsockname()[:2]
        self.failed_dials = 0       # accepted connections closed because no far end opened
        self._connections = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acceptor = None

    def start(self, dial=None):
        if dial is not None:
            self.dial = dial
        if self.dial is None:
            raise ValueError("a relay needs a dial function")
        self._acceptor = threading.Thread(target=self._accept, daemon=True,
                                          name=f"relay :{self.port}")
        self._acceptor.start()
        return self

    def connections(self):
        """How many connections are open now."""
        with self._lock:
            return len(self._connections)

    def _accept(self):
        while not self._stopping.is_set():
            try:
                client, _address = self.listener.accept()
            except OSError:
                # stop() shut the listener down; anything else (no descriptor left, a client
                # that gave up during the handshake) passes.
                self._stopping.wait(ACCEPT_RETRY)
                continue
            client_end = SocketEnd(client)
            try:
                far = self.dial()
            except Exception:  # noqa: BLE001  (any failure to open a far end closes the client)
                self.failed_dials += 1
                client_end.interrupt()
                client_end.release()
                continue
            connection = _Connection(client_end, far, self._released)
            with self._lock:
                stopping = self._stopping.is_set()
                if not stopping:
                    self._connections.add(connection)
            if stopping:  # stop() has already ended the connections it knew of
                for end in (client_end, far):
                    end.interrupt()
                    end.release()
                return
            connection.start()

    def _released(self, connection):
        with self._lock:
            self._connections.discard(connection)

    def stop(self, timeout=STOP_TIMEOUT):
        """Accept nothing more and end every connection; returns once the relay's threads are
        gone (at most `timeout` seconds)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
        self.listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.abort()
        for connection in connections:
            for thread in connection.threads:
                thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()
