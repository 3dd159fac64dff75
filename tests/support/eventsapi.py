"""rx-api's event stream on a real HTTP server, for the tests and bench/api_events.py, before (and apart
from) rx-api's own Application: a tornado Application with only `event_routes`, whose `authenticate` is the
real token check (AuthService.check_token over the master's token store), in its own process:

    python -m tests.support.eventsapi -c MASTER_CONFIG_DIR --port PORT [--set key=yaml-value ...]

and the clients the tests read it with: `SseStream` (a real HTTP/1.1 connection, chunked, read in a
thread) and `WsStream` (tornado's WebSocket client in a thread), both handing out parsed events.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import json
import queue
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from .daemon import Daemon
from .procs import DEADLINE, wait_for

# ---------------------------------------------------------------- the server


def make_app(hub: Any, auth: Any) -> Any:
    """A tornado Application serving the event routes, authenticating with `auth.check_token`."""
    import tornado.log
    import tornado.web

    from rx.api.events import event_routes
    from rx.api.events.handlers import redact_uri

    class ApiError(tornado.web.HTTPError):
        """As rx-api's: a status and a message for the caller."""

        def __init__(self, status: int, message: str) -> None:
            super().__init__(status)
            self.message = message

    async def authenticate(handler: tornado.web.RequestHandler) -> Any:
        """No token: rx-api's ApiError; a bad one: the AuthService's own TokenInvalid (both are 401)."""
        token = handler.request.headers.get("X-Auth-Token", "")
        if not token:
            raise ApiError(401, "Please log in")
        return await auth.check_token(token, source=handler.request.remote_ip)

    def log_request(handler: tornado.web.RequestHandler) -> None:
        status = handler.get_status()
        log = tornado.log.access_log.info if status < 400 else tornado.log.access_log.warning
        log("%d %s %s (%s) %.2fms", status, handler.request.method, redact_uri(handler.request.uri or ""),
            handler.request.remote_ip, 1000.0 * handler.request.request_time())
    return tornado.web.Application(event_routes(hub, authenticate), log_function=log_request, compress_response=True)


async def serve(config_dir: str, port: int, overrides: dict[str, Any], token_recheck: float | None = None) -> None:
    from rx.api.events import open_hub
    from rx.master.services.auth import open_auth
    from rx.master.store import open_stores, store_config
    from tests.support.sandbox import load_master
    cfg = dataclasses.replace(load_master(config_dir), **overrides)
    stores = open_stores(store_config(cfg))
    auth = open_auth(cfg, stores)
    hub = open_hub(cfg, auth=auth)
    if token_recheck:
        hub.token_recheck = token_recheck
    server = make_app(hub, auth).listen(port, "127.0.0.1")
    await hub.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"serving rx-api events on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await hub.stop()
    server.stop()
    await asyncio.sleep(0.2)  # the streams' last notices go out
    await stores.aclose()


def main(argv: list[str] | None = None) -> None:
    import logging
    p = argparse.ArgumentParser(prog="python -m tests.support.eventsapi")
    p.add_argument("-c", "--config-dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (YAML value)")
    p.add_argument("--token-recheck", type=float, help="seconds between token re-checks (default the hub's)")
    a = p.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(a.config_dir, a.port, overrides, a.token_recheck))


def start_server(log: Path, config_dir: str | Path, port: int, *args: str) -> Daemon:
    """The server in its own process, once it accepts connections."""
    daemon = Daemon("rx-api-events", [sys.executable, "-m", "tests.support.eventsapi", "-c", str(config_dir),
                                      "--port", str(port), *args], log)

    def up() -> bool:
        if not daemon.alive():
            raise AssertionError(f"the events server exited:\n{daemon.tail(30)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(up, what="the events server to listen")
    return daemon


def add_file_user(passwords: Path, name: str, password: str) -> None:
    """A user of the `file` eauth back end (rx.master.auth --add-user)."""
    import subprocess
    done = subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", name, "--file", str(passwords),
                           "--password-stdin"], input=password + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _with_auth(cfg: Any, act: Callable[[Any], Any]) -> Any:
    from rx.master.services.auth import open_auth
    from rx.master.store import open_stores, store_config

    async def go() -> Any:
        stores = open_stores(store_config(cfg))
        try:
            return await act(open_auth(cfg, stores))
        finally:
            await stores.aclose()
    return asyncio.run(go())


def login(cfg: Any, user: str, password: str) -> str:
    """A token for a `file` eauth user, from the master's own AuthService (what rx-api's /login does)."""
    return _with_auth(cfg, lambda auth: _token(auth.login("file", user, password, source="test")))


async def _token(login: Any) -> str:
    return (await login).token


def revoke(cfg: Any, token: str) -> bool:
    return _with_auth(cfg, lambda auth: auth.revoke(token))


def fire(cfg: Any, events: list[tuple[str, dict]]) -> None:
    """Fire events on the master's bus, as any process of the master's user can."""
    from rx.master.services import event_service

    @dataclasses.dataclass(frozen=True)
    class Fired:
        tag: str
        data: dict

        def to_wire(self) -> dict:
            return self.data

    async def go() -> None:
        service = event_service(cfg)
        try:
            assert await service.fire([Fired(t, d) for t, d in events]), "the master is not running"
        finally:
            service.close()
    asyncio.run(go())


def wait_live(cfg: Any, port: int, token: str, timeout: float = 30.0) -> None:
    """Until the server's hub is subscribed to the bus: a probe event fired reaches a stream."""
    stream = SseStream(port, token, query="tag=test/probe/")
    try:
        deadline = time.monotonic() + timeout
        while True:
            fire(cfg, [("test/probe/x", {})])
            try:
                stream.next(0.5, lambda e: e.tag == "test/probe/x")
                return
            except AssertionError:
                assert time.monotonic() < deadline, "the events server never saw the bus"
    finally:
        stream.close()


# ---------------------------------------------------------------- clients


@dataclasses.dataclass
class Event:
    id: int | None
    tag: str
    data: Any


def parse_sse(lines: list[str]) -> Event | None:
    """One server-sent event from its lines (None for a comment-only or empty block)."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    if "data" not in fields:
        return None
    body = json.loads(fields["data"])
    assert body["tag"] == fields.get("tag"), (body, fields)
    return Event(int(fields["id"]) if "id" in fields else None, body["tag"], body["data"])


class _Stream:
    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        self.keepalives = 0

    def next(self, timeout: float = DEADLINE, match: Callable[[Event], bool] = lambda e: True) -> Event:
        """The next event `match`ing within `timeout` seconds (AssertionError if none)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                break
            if ev is None:
                raise AssertionError("the stream ended")
            if match(ev):
                return ev
        raise AssertionError("timed out waiting for an event")

    def collect(self, until: Callable[[list[Event]], bool], timeout: float = DEADLINE) -> list[Event]:
        """Events until `until(events so far)` holds (AssertionError after `timeout`)."""
        got: list[Event] = []
        deadline = time.monotonic() + timeout
        while not until(got):
            got.append(self.next(max(0.01, deadline - time.monotonic())))
        return got


class SseStream(_Stream):
    """GET /events over one HTTP/1.1 connection; `status` is the response's status."""

    def __init__(self, port: int, token: str | None = None, *, query: str = "", headers: dict | None = None) -> None:
        super().__init__()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        hdrs = dict(headers or {})
        if token:
            hdrs["X-Auth-Token"] = token
        self.conn.request("GET", "/events" + (f"?{query}" if query else ""), headers=hdrs)
        self._sock = self.conn.sock
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers
        if self.status != 200:
            self.body = self.response.read()
            self.ended.set()
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        lines: list[str] = []
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\n")
                if line:
                    if line.startswith(":"):
                        self.keepalives += 1
                    lines.append(line)
                    continue
                ev = parse_sse(lines)
                lines = []
                if ev is not None:
                    self.events.put(ev)
        except (OSError, http.client.HTTPException, ValueError, AttributeError):  # AttributeError: closed meanwhile
            pass
        finally:
            self.ended.set()
            self.events.put(None)

    def close(self) -> None:
        """Shut the socket first: the reader thread may be blocked in a read that holds the response's lock."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


class WsStream(_Stream):
    """The WebSocket feed at `path` (`/ws` or `/ws/<token>`), started with `websocket client ready`; `status`
    is the handshake's HTTP status (101 when it opened). Messages are kept as text in `texts`; events parsed."""

    def __init__(self, port: int, path: str = "/ws", token: str | None = None, *, query: str = "",
                 ready: bool = True) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.status = 0
        self._loop = asyncio.new_event_loop()
        self._opened = threading.Event()
        self._conn: Any = None
        url = f"ws://127.0.0.1:{port}{path}" + (f"?{query}" if query else "")
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(url, token, ready),),
                                        daemon=True)
        self._thread.start()
        assert self._opened.wait(DEADLINE), "the WebSocket handshake did not finish"

    async def _run(self, url: str, token: str | None, ready: bool) -> None:
        import tornado.httpclient
        import tornado.websocket
        req = tornado.httpclient.HTTPRequest(url, headers={"X-Auth-Token": token} if token else {})
        try:
            self._conn = await tornado.websocket.websocket_connect(req)
            self.status = 101
        except tornado.httpclient.HTTPClientError as exc:
            self.status = exc.code
        finally:
            self._opened.set()
        if self._conn is None:
            self.ended.set()
            return
        if ready:
            await self._conn.write_message("websocket client ready")
        while True:
            msg = await self._conn.read_message()
            if msg is None:
                break
            self.texts.append(msg)
            if msg.startswith("data: "):
                body = json.loads(msg[len("data: "):])
                self.events.put(Event(body.get("id"), body["tag"], body["data"]))
            elif msg.startswith("{"):
                self.events.put(Event(None, "", json.loads(msg)))
        self.ended.set()
        self.events.put(None)

    def close(self) -> None:
        if self._conn is not None:
            self._loop.call_soon_threadsafe(self._conn.close)
        self._thread.join(10)


if __name__ == "__main__":
    main()
