"""A bare TCP relay, the control of bench/playback.py's throughput figure: what any relay in front of the
sandbox costs on this machine, with no HTTP, Django or provider logic at all.

    python bench/_relay.py HOST PORT      # prints the port it listens on, then relays until killed

Each connection is forwarded to HOST:PORT both ways with splice(2) through a 1 MiB pipe (the same kernel path as
recordings/zerocopy.py, minus everything else), one thread per direction, in a process of its own so that its
CPU time can be read apart from the client's and the sandbox's.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import threading

PIPE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def pump(source: socket.socket, target: socket.socket) -> None:
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE)
        except OSError:
            pass
        while True:
            n = os.splice(source.fileno(), write_fd, PIPE)
            if not n:
                break
            while n:
                n -= os.splice(read_fd, target.fileno(), n)
    except OSError:
        pass
    finally:
        os.close(read_fd)
        os.close(write_fd)
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener: socket.socket, upstream: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(upstream)
        threading.Thread(target=pump, args=(client, server), daemon=True).start()
        threading.Thread(target=pump, args=(server, client), daemon=True).start()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    serve(listener, (host, port))


if __name__ == "__main__":
    main()
