"""rx-api's event stream under load (`python -m bench.api_events`; the `api_events` section of
`python -m bench`): events fired on a real master's bus at a steady rate reach N server-sent-event clients of
the event routes on a real HTTP server (tests/support/eventsapi.py, the token check real), none dropped.

The events are fired by a separate process (the bus's own PUSH socket, paced every 10 ms); the clients are
N HTTP/1.0 connections in this process (no chunked framing), each counting `id:` lines.  Reported: events
fired and the rate achieved, per client the events delivered (min and max over the clients), clients dropped
(their connection ended early), events missing, the delivery rate (events the slowest client got per
second, from the first event any client got until the last client had the last one), and the CPU the events server used.

    python -m bench.api_events --rate 5000 --clients 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from typing import Any, Callable

from tests.support.eventsapi import add_file_user, login, start_server, wait_live
from tests.support.procs import cpu_seconds, free_port

from .sandbox import BenchSandbox

TAG = "bench/ev/"


async def _fire(config_dir: str, rate: int, seconds: float) -> dict:
    """Fire `rate` events a second for `seconds` on the master's bus (this process's own PUSH socket)."""
    from rx.master.services import event_service
    from rx.transport.roles import ipc_url
    from tests.support.sandbox import load_master
    cfg = load_master(config_dir)
    service = event_service(cfg)
    sink = service.transport.event_sink(ipc_url(cfg.event_pull_ipc))
    n, t0 = 0, time.monotonic()
    try:
        while (elapsed := time.monotonic() - t0) < seconds:
            due = int(min(elapsed + 0.01, seconds) * rate)
            while n < due:
                await sink.fire(f"{TAG}{n}", {"n": n})
                n += 1
            await asyncio.sleep(max(0.0, t0 + elapsed + 0.01 - time.monotonic()))
        while n < int(seconds * rate):
            await sink.fire(f"{TAG}{n}", {"n": n})
            n += 1
    finally:
        sink.close()
        service.close()
    return {"fired": n, "seconds": time.monotonic() - t0}


class _Counter:
    """One SSE client: an HTTP/1.0 GET /events, counting the `id:` lines it reads."""

    def __init__(self) -> None:
        self.count = 0
        self.first = self.last = 0.0
        self.ended = False

    async def run(self, port: int, token: str, ready: asyncio.Event, total: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /events?tag={TAG} HTTP/1.0\r\nX-Auth-Token: {token}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        ready.set()
        tail = b"\n"
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    self.ended = True
                    return
                n = (tail + data).count(b"\nid: ")
                if n:
                    now = time.monotonic()
                    self.first = self.first or now
                    self.count, self.last = self.count + n, now
                    if total and self.count >= total[0]:
                        return
                tail = data[-5:]
        finally:
            writer.close()


async def _measure(config_dir: str, port: int, token: str, rate: int, clients: int, seconds: float) -> dict:
    counters = [_Counter() for _ in range(clients)]
    total: list[int] = []
    readies = [asyncio.Event() for _ in counters]
    tasks = [asyncio.create_task(c.run(port, token, r, total)) for c, r in zip(counters, readies)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    firer = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.api_events", "--fire", config_dir,
                                                 "--rate", str(rate), "--seconds", str(seconds),
                                                 stdout=asyncio.subprocess.PIPE)
    out, _ = await firer.communicate()
    fired = json.loads(out)
    total.append(fired["fired"])
    done, late = await asyncio.wait(tasks, timeout=30)
    for task in late:
        task.cancel()
    for task in done:
        task.result()
    counts = [c.count for c in counters]
    first = min((c.first for c in counters if c.first), default=0.0)
    span = max(1e-9, max(c.last for c in counters) - first)
    return {"rate": rate, "clients": clients, "seconds": seconds, "fired": fired["fired"],
            "fire_rate": fired["fired"] / fired["seconds"],
            "delivered_min": min(counts), "delivered_max": max(counts),
            "dropped_clients": sum(c.ended and c.count < fired["fired"] for c in counters),
            "missing": sum(max(0, fired["fired"] - n) for n in counts),
            "delivery_rate": min(counts) / span, "delivery_s": span}


def bench_api_events(rate: int, clients: int, seconds: float, say: Callable[[str], None]) -> dict[str, Any]:
    """The section's figures, on one sandbox master (no minions: the events are fired on its bus)."""
    box = BenchSandbox()
    try:
        password = secrets.token_urlsafe(12)
        passwords = box.root / "eauth-users"
        add_file_user(passwords, "bench", password)
        box.master_overrides = {"external_auth": {"file": {"^filename": str(passwords), "bench": [".*", "@runner"]}}}
        box.start_master()
        port = free_port()
        api = start_server(box.root / "api-events.log", box.master_dir, port)
        try:
            token = login(box.cfg, "bench", password)
            wait_live(box.cfg, port, token)
            cpu0 = cpu_seconds([api.pid])
            res = asyncio.run(_measure(str(box.master_dir), port, token, rate, clients, seconds))
            res["server_cpu_s"] = cpu_seconds([api.pid]) - cpu0
        finally:
            api.stop()
    finally:
        box.close()
    say(f"api_events: {res['fired']} events at {res['fire_rate']:.0f}/s to {clients} SSE clients: each got "
        f"{res['delivered_min']}-{res['delivered_max']}, {res['dropped_clients']} dropped, {res['missing']} missing; "
        f"{res['delivery_rate']:.0f} events/s per client; events server CPU {res['server_cpu_s']:.1f}s")
    return res


def render_section(res: dict | None) -> list[str]:
    """The RESULTS.md section."""
    if not res:
        return []
    measured = res.get("measured", {})
    return ["## rx-api event stream (`GET /events`)", "",
            f"Measured {measured.get('date', '?')} at commit `{measured.get('commit', '?')}`.",
            "", "| Measurement | Result |", "|---|---|",
            f"| events fired on the bus ({res['seconds']:g} s at {res['rate']}/s asked) | {res['fired']} "
            f"({res['fire_rate']:.0f}/s) |",
            f"| SSE clients / dropped / events missing | {res['clients']} / {res['dropped_clients']} / "
            f"{res['missing']} |",
            f"| events each client got (min-max) | {res['delivered_min']}-{res['delivered_max']} |",
            f"| delivery rate, slowest client (first event to last) | {res['delivery_rate']:.0f} events/s |",
            f"| events server CPU | {res['server_cpu_s']:.1f} s |", ""]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.api_events", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=int, default=5000, help="events fired per second")
    p.add_argument("--clients", type=int, default=20, help="SSE clients")
    p.add_argument("--seconds", type=float, default=10.0, help="how long events are fired")
    p.add_argument("--fire", metavar="MASTER_CONFIG_DIR", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.fire:
        print(json.dumps(asyncio.run(_fire(a.fire, a.rate, a.seconds))))
        return
    res = bench_api_events(a.rate, a.clients, a.seconds, lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
