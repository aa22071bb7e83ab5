"""A tiny local HTTP(S) server for tests/ctgov/curl_transport_test.cc.

Serves on 127.0.0.1 only, on ports chosen by the OS, and prints
"http <port>" (and "https <port>" with --tls CERT KEY) on stdout, one line
each, then serves until killed. Each path provokes one behaviour the
transport must map to the right status:

  /ok                200 JSON
  /headers           200 JSON echo of the request headers
  /gzip              200 gzip-encoded JSON (Content-Encoding: gzip)
  /status/<n>        status n (503 carries Retry-After: 7)
  /redirect          301 to /ok (must not be followed)
  /slow              sleeps 5 s before answering (total timeout)
  /stall             sends 10 of 1000 promised bytes, then sleeps 5 s
  /truncated         promises 100 bytes, sends 10, closes (partial transfer)
  /chunked-truncated one chunk of a chunked body, then closes
  /reset             closes the connection with a TCP RST, no response
  /big?bytes=N       N bytes of body

The full fake ClinicalTrials.gov is tests/fake_ctgov/; this one only
misbehaves on purpose.
"""

import gzip
import http.server
import json
import socket
import ssl
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def _send(self, status, body, content_type="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        path = url.path
        if path == "/ok":
            self._send(200, b'{"ok":true}')
        elif path == "/headers":
            body = json.dumps({k.lower(): v for k, v in self.headers.items()})
            self._send(200, body.encode())
        elif path == "/gzip":
            if "gzip" not in self.headers.get("Accept-Encoding", ""):
                self._send(406, b"gzip not accepted", "text/plain")
                return
            body = gzip.compress(b'{"compressed":true,"pad":"' + b"x" * 5000 + b'"}')
            self._send(200, body, extra={"Content-Encoding": "gzip"})
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            extra = {"Retry-After": "7"} if code == 503 else {}
            self._send(code, ("status %d" % code).encode(), "text/plain", extra)
        elif path == "/redirect":
            self._send(301, b"", "text/plain", {"Location": "/ok"})
        elif path == "/slow":
            time.sleep(5)
            self._send(200, b'{"slow":true}')
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            time.sleep(5)
            self.close_connection = True
        elif path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        elif path == "/chunked-truncated":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"a\r\n0123456789\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif path == "/reset":
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif path == "/big":
            n = int(parse_qs(url.query).get("bytes", ["1000"])[0])
            self._send(200, b"x" * n, "text/plain")
        else:
            self._send(404, b"no such path", "text/plain")

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # resets and closed sockets are the point here


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main():
    http_server = Server(("127.0.0.1", 0), Handler)
    serve(http_server)
    print("http %d" % http_server.server_address[1], flush=True)
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        https_server = Server(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        https_server.socket = context.wrap_socket(https_server.socket,
                                                  server_side=True)
        serve(https_server)
        print("https %d" % https_server.server_address[1], flush=True)
    print("ready", flush=True)
    # Exit when the test closes our stdin (or kills us).
    sys.stdin.read()


if __name__ == "__main__":
    main()
