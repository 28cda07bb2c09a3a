"""Real servers on loopback for the exchange tests: our app under uvicorn, medallion (the OASIS
TAXII 2.1 reference server) under werkzeug, and a small MISP peer speaking the endpoints we call."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_app(app):
    """Serve an ASGI app with uvicorn on 127.0.0.1 (port 0); yields the base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_medallion(data: dict, users: dict[str, str]):
    """medallion with its memory backend, served by werkzeug on 127.0.0.1 (port 0)."""
    from medallion import application_instance, register_blueprints, set_config
    from werkzeug.serving import make_server

    set_config(application_instance, "users", {"users": users})
    set_config(application_instance, "taxii", {"taxii": {"max_page_size": 100}})
    set_config(application_instance, "backend", {"backend": {
        "module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": None}})
    application_instance.medallion_backend.data = data
    if "objects" not in application_instance.blueprints:
        register_blueprints(application_instance)
    server = make_server("127.0.0.1", 0, application_instance, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", application_instance.medallion_backend
    finally:
        server.shutdown()
        thread.join(10)


class MispPeer:
    """The few MISP endpoints commonwatch calls: restSearch, add and edit events, getVersion (a
    connection test), by API key."""

    def __init__(self, key: str):
        self.key = key
        self.events: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []

    @contextmanager
    def serve(self):
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                peer.requests.append(("GET", self.path))
                if self.headers.get("Authorization") != peer.key:
                    return self._send(403, {"message": "Authentication failed."})
                if self.path == "/servers/getVersion":
                    return self._send(200, {"version": "2.4.190", "perm_sync": True, "perm_sighting": True})
                return self._send(404, {"message": "not found"})

            def do_POST(self):
                peer.requests.append(("POST", self.path))
                if self.headers.get("Authorization") != peer.key:
                    return self._send(403, {"message": "Authentication failed."})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/events/restSearch":
                    since = int(body.get("timestamp") or 0)
                    found = [{"Event": e} for e in peer.events.values()
                             if int(e.get("timestamp", 0)) >= since and e.get("published", True)]
                    return self._send(200, {"response": found})
                if self.path == "/events/add":
                    event = body["Event"]
                    if event["uuid"] in peer.events:
                        return self._send(403, {"message": "Event already exists"})
                    peer.events[event["uuid"]] = event
                    return self._send(200, {"Event": event})
                if self.path.startswith("/events/edit/"):
                    uuid = self.path.rsplit("/", 1)[1]
                    if uuid not in peer.events:
                        return self._send(404, {"message": "Invalid event"})
                    peer.events[uuid] = body["Event"]
                    return self._send(200, {"Event": body["Event"]})
                return self._send(404, {"message": "not found"})

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(10)
