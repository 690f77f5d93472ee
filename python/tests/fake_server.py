"""fake_server.py — a stand-in for `armo serve` in the Client tests: a
stdlib HTTP server on loopback that records every request (method, path,
headers, body) and answers with what the test put in `routes`, shaped as
issue 14 and shared/notes/protocols.md specify."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    def __init__(self):
        self.requests = []   # (method, path, headers dict, body bytes)
        self.routes = {}     # (method, path) -> function(body obj) -> (status, obj)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                fake.requests.append((method, self.path, dict(self.headers), body))
                route = fake.routes.get((method, self.path))
                if route is None:
                    status, obj = 404, {"error": f"no route {method} {self.path}"}
                else:
                    status, obj = route(json.loads(body) if body else None)
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
