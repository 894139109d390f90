#!/usr/bin/env python3
"""An engine that answers at once: the floor under any daemon for a docker CLI command.

Serves, on the unix socket given, just what `docker run -d IMAGE CMD` and `docker run
--rm IMAGE CMD` send (ping, create, attach, wait, start; see docker-api-wire.md section
3.1) with canned answers and no work behind them: the container "exits" 0 with no
output as soon as it is started. Timing the docker CLI against it measures the CLI
alone: its start-up, its requests, its exit. scale-bench.sh runs its 100 x `run -d`
against this too, run-bench its back-to-back `run --rm`.

    bench/instant-engine.py SOCKET
"""
import json
import os
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler

CONTAINER_ID = "0" * 64

# Each start ends the container: attach streams close and waits answer.
started = threading.Condition()
starts = 0


def until_started(seen):
    with started:
        started.wait_for(lambda: starts != seen, timeout=30)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"

    def reply(self, code, body=None, extra=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Api-Version", "1.47")
        self.send_header("Ostype", "linux")
        for k, v in extra:
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.endswith("/_ping"):
            self.reply(200, None, [("Content-Type", "text/plain; charset=utf-8")])
        elif path.endswith("/version"):
            self.reply(200, {"ApiVersion": "1.47", "MinAPIVersion": "1.24", "Version": "instant", "Os": "linux", "Arch": "amd64"})
        else:
            self.reply(404, {"message": f"not served here: GET {path}"})

    def do_POST(self):
        global starts
        self.body()
        path = self.path.split("?")[0]
        if path.endswith("/containers/create"):
            self.reply(201, {"Id": CONTAINER_ID, "Warnings": []})
        elif path.endswith("/attach"):
            seen = starts
            self.send_response(101, "UPGRADED")
            self.send_header("Content-Type", "application/vnd.docker.raw-stream")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "tcp")
            self.end_headers()
            self.wfile.flush()
            until_started(seen)
            self.close_connection = True
        elif path.endswith("/wait"):
            # Headers at once, the body at the exit (`run -d` drops the connection
            # after start instead).
            seen = starts
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            until_started(seen)
            body = json.dumps({"StatusCode": 0, "Error": None}).encode() + b"\n"
            try:
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
        elif path.endswith("/start"):
            self.send_response(204)
            self.send_header("Api-Version", "1.47")
            self.end_headers()
            self.wfile.flush()
            with started:
                starts += 1
                started.notify_all()
        else:
            self.reply(404, {"message": f"not served here: POST {path}"})


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    sock = sys.argv[1]
    if os.path.exists(sock):
        os.unlink(sock)
    with Server(sock, Handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
