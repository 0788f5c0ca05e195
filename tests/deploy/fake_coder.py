"""A fake Coder for the deployment checks: buildinfo (what /readyz asks) and an audit
endpoint that wants a session token, on 127.0.0.1 at a free port."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "deploycheck-Token0000000000000001"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/v2/buildinfo":
            self._json(200, {"version": "v2.24.0", "external_url": "https://coder.example.com"})
        elif self.path.startswith("/api/v2/audit"):
            if self.headers.get("Coder-Session-Token") != TOKEN:
                self._json(401, {"message": "You must be logged in to perform this action."})
            else:
                self._json(200, {"audit_logs": [], "count": 0})
        else:
            self._json(404, {"message": "Route not found."})


def start():
    """Starts the fake; returns its base URL and the server (shutdown() it when done)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server
