"""A stand-in for your own app: it listens on port 8000, is ready at /ready, and, unlike the lab's
sample app, sends no version header. The lab tells its versions apart by the address nginx reached."""

import os
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASE = os.environ.get("SHOP_RELEASE", "dev")
BOOT_S = float(os.environ.get("SHOP_BOOT_S", "0.5"))  # not ready before this: a real app warms up
FAIL_RATE = float(os.environ.get("SHOP_FAIL_RATE", "0"))  # a bad release: this share of requests gets a 500
started = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream connections expect
    disable_nagle_algorithm = True  # headers and body are two writes: Nagle would hold the body ~40 ms

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        if self.path == "/ready":
            ready = time.monotonic() - started >= BOOT_S
            self._send(200 if ready else 503, b"ready\n" if ready else b"warming up\n")
        elif random.random() < FAIL_RATE:
            self._send(500, b"out of stock\n")
        else:
            self._send(200, f"shop {RELEASE}\n".encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


# The listen backlog: socketserver's default of 5 drops a burst of new connections, and nginx opens one
# to each instance for every request in flight when traffic moves to it. Seen with the machine busy: its
# connects timed out (1 s), and with nginx's max_fails=1 both v2 instances were out for fail_timeout
# (10 s): 827 of 2,267 requests answered 502. Real servers listen with hundreds to thousands.
ThreadingHTTPServer.request_queue_size = 128
server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
# PID 1 in a container gets no default SIGTERM handler: without one, every stop waits out the grace period.
# On SIGTERM: stop accepting (shutdown() from another thread, as serve_forever runs in this one), give the
# requests in flight a moment to finish, then exit.
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
time.sleep(0.2)
