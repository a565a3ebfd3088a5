"""The reaper: a small watcher that removes one run's objects when the lab that made them is gone.

It runs in a container of its own beside the run (image `deploylab/reaper:1`, Python's standard library
only, the Docker socket mounted), the way testcontainers' Ryuk does: the lab connects to it at the start of
a run and keeps the connection open. When the lab says `done` (it cleaned up itself), the reaper exits.
When the connection drops without that (the lab was killed: `kill -9`, an OOM kill, a CI job's timeout),
or when no lab connects within CONNECT_TIMEOUT_S, it removes every Swarm service, container and network
labelled with the run's id, itself last, then exits.

It speaks HTTP to the engine over the socket: the SDK is not in the image, and it needs four calls.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
import urllib.parse

SOCKET = "/var/run/docker.sock"
LISTEN_PORT = 8080
CONNECT_TIMEOUT_S = 30.0  # a lab that never connects is gone too
RECONNECT_S = 2.0  # after a drop, how long a lab may take to connect again before the reaping starts


class Engine(http.client.HTTPConnection):
    def __init__(self) -> None:
        super().__init__("docker", timeout=30)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(SOCKET)


def call(method: str, path: str) -> object:
    conn = Engine()
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        if response.status >= 400 and response.status != 404:
            raise OSError(f"{method} {path}: {response.status} {body[:200]!r}")
        return (
            json.loads(body)
            if body and response.headers.get("Content-Type", "").startswith("application/json")
            else None
        )
    finally:
        conn.close()


def labelled(kind: str, label: str) -> list[dict]:
    filters = urllib.parse.quote(json.dumps({"label": [label]}))
    found = call("GET", f"/{kind}?filters={filters}" + ("&all=1" if kind == "containers/json" else ""))
    return found if isinstance(found, list) else []


def log(line: str) -> None:
    print(f"reaper: {line}", flush=True)


def reap(run_id: str) -> None:
    """Every service, container and network of the run, this container last (it has --rm)."""
    label = f"deploylab.run={run_id}"
    me = os.environ.get("HOSTNAME", "")
    try:
        for service in labelled("services", label):
            call("DELETE", f"/services/{service['ID']}")
    except OSError as exc:  # not a swarm manager: no services to remove
        log(f"services: {exc}")
    for attempt in range(10):
        left = 0
        for container in labelled("containers/json", label):
            if container["Id"].startswith(me):
                continue
            try:
                call("DELETE", f"/containers/{container['Id']}?force=1&v=1")
            except OSError as exc:
                left += 1
                log(f"container {container['Id'][:12]}: {exc}")
        for network in labelled("networks", label):
            try:
                call("DELETE", f"/networks/{network['Id']}")
            except OSError:
                left += 1  # an endpoint still going away: try again
        if not left:
            log(f"run {run_id}: everything removed (attempt {attempt + 1})")
            return
        time.sleep(1.0)
    log(f"run {run_id}: {left} object(s) left after 10 attempts")


def watch(run_id: str) -> int:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", LISTEN_PORT))
    server.listen(4)
    wait = CONNECT_TIMEOUT_S
    while True:
        server.settimeout(wait)
        try:
            conn, _ = server.accept()
        except TimeoutError:
            log("no lab connected: reaping")
            reap(run_id)
            return 0
        conn.settimeout(None)
        with conn:
            conn.sendall(b"ready\n")
            data = b""
            while True:
                chunk = conn.recv(1024)
                if not chunk:
                    break
                data += chunk
                if b"done" in data:
                    log(f"run {run_id}: the lab cleaned up itself")
                    return 0
        log("the lab's connection dropped")
        wait = RECONNECT_S


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: reaper_app.py RUN_ID", file=sys.stderr)
        sys.exit(2)
    sys.exit(watch(sys.argv[1]))
