"""What rx-api adds over the LocalClient (`python -m bench --only api_rest`; `python -m bench.api_rest` alone):
a real master, N real minions and the real `rx-api` process on loopback.

- `POST /` `local` `test.ping` to the N minions (one keep-alive HTTP connection, the user's token), and in the
  same run, interleaved, AsyncLocalClient.cmd of the same job as root and as the same user (its token): the
  medians of `runs` each, and the API's median minus the LocalClient's.
- `users` concurrent API users, each logging in (`POST /login`) and running `local` `test.ping` once, all at
  once (tornado's async HTTP client, one connection each): failures counted, wall time, per-user p50/p95.
  They are sessions of one `file` user (a login hashes the password with scrypt, in rx-api's threads).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import time
from typing import Any, Callable

from tests.support.api import ApiServer, add_file_users, api_config

from .sandbox import BenchSandbox

PASSWORD = "bench-password"
PING = json.dumps([{"client": "local", "tgt": "*", "fun": "test.ping"}]).encode()


def _api_ping(conn: http.client.HTTPConnection, token: str, minions: int) -> float:
    t0 = time.perf_counter()
    conn.request("POST", "/", body=PING, headers={"Content-Type": "application/json", "X-Auth-Token": token})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    took = time.perf_counter() - t0
    if resp.status != 200 or len(body["return"][0]) != minions or not all(body["return"][0].values()):
        raise RuntimeError(f"POST / answered {resp.status}: {str(body)[:200]}")
    return took


async def _client_pings(cfg: Any, token: str | None, runs: int, minions: int) -> list[float]:
    from rx.client.local import AsyncLocalClient
    out = []
    async with AsyncLocalClient(cfg=cfg, token=token, source="bench") as client:
        for _ in range(runs):
            t0 = time.perf_counter()
            got = await client.cmd("*", "test.ping")
            out.append(time.perf_counter() - t0)
            if len(got) != minions:
                raise RuntimeError(f"the LocalClient got {len(got)} of {minions} returns")
    return out


def ping_overhead(api: ApiServer, cfg: Any, minions: int, runs: int) -> dict[str, Any]:
    """Medians (ms) of POST / local test.ping and AsyncLocalClient.cmd (root, and with the user's token),
    interleaved run by run."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=120)
    api_s: list[float] = []
    root_s: list[float] = []
    user_s: list[float] = []
    try:
        _api_ping(conn, api.token, minions)  # warm: connection, imports, the minions' first job
        asyncio.run(_client_pings(cfg, None, 1, minions))
        for _ in range(runs):
            api_s.append(_api_ping(conn, api.token, minions))
            root_s += asyncio.run(_client_pings(cfg, None, 1, minions))
            user_s += asyncio.run(_client_pings(cfg, api.token, 1, minions))
    finally:
        conn.close()
    med = {k: statistics.median(v) * 1000 for k, v in (("api", api_s), ("client_root", root_s),
                                                         ("client_user", user_s))}
    return {"minions": minions, "runs": runs, "api_ms": med["api"], "client_root_ms": med["client_root"],
            "client_user_ms": med["client_user"], "overhead_ms": med["api"] - med["client_user"]}


async def _users(port: int, users: int, minions: int) -> dict[str, Any]:
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError
    AsyncHTTPClient.configure(None, max_clients=users)
    http = AsyncHTTPClient()
    base = f"http://127.0.0.1:{port}"
    login = json.dumps({"username": "bench", "password": PASSWORD, "eauth": "file"})
    failures: list[str] = []

    async def one() -> float | None:
        t0 = time.perf_counter()
        try:
            got = await http.fetch(f"{base}/login", method="POST", body=login, request_timeout=300,
                                   headers={"Content-Type": "application/json"})
            token = json.loads(got.body)["return"][0]["token"]
            ran = await http.fetch(f"{base}/", method="POST", body=PING, request_timeout=300,
                                   headers={"Content-Type": "application/json", "X-Auth-Token": token})
            answer = json.loads(ran.body)["return"][0]
            if len(answer) != minions or not all(answer.values()):
                failures.append(f"{len(answer)} of {minions} answered")
                return None
        except (HTTPClientError, OSError, ValueError, KeyError) as exc:
            failures.append(f"{type(exc).__name__}: {str(exc)[:100]}")
            return None
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    took = await asyncio.gather(*(one() for _ in range(users)))
    wall = time.perf_counter() - t0
    http.close()
    ok = sorted(t for t in took if t is not None)
    return {"users": users, "failures": len(failures), "failure_examples": failures[:3], "wall_s": wall,
            "p50_s": statistics.median(ok) if ok else None,
            "p95_s": ok[min(len(ok) - 1, int(len(ok) * 0.95))] if ok else None}


def bench_api_rest(minions: int, runs: int, users: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    box = BenchSandbox()
    api = None
    try:
        passwords = box.root / "eauth-users"
        add_file_users(passwords, {"bench": PASSWORD})
        box.start_master(**api_config(passwords, {"bench": [".*"]}, clients=["local"]))
        box.start_minions([f"api{i}" for i in range(minions)])
        api = ApiServer.start(box)
        api.login("bench", PASSWORD)
        say(f"api_rest: POST / local test.ping to {minions} minions vs AsyncLocalClient, {runs} runs")
        ping = ping_overhead(api, box.cfg, minions, runs)
        say(f"api_rest: API {ping['api_ms']:.1f} ms, LocalClient {ping['client_user_ms']:.1f} ms with the token, "
            f"{ping['client_root_ms']:.1f} ms as root: +{ping['overhead_ms']:.1f} ms")
        say(f"api_rest: {users} concurrent users: login + local test.ping")
        crowd = asyncio.run(_users(api.port, users, minions))
        say(f"api_rest: {users} users in {crowd['wall_s']:.1f} s, {crowd['failures']} failures")
        return {"ping": ping, "users": crowd}
    finally:
        if api is not None:
            api.stop()
        box.close()


def render(res: dict | None) -> list[str]:
    """The RESULTS.md section."""
    if not res:
        return []
    p, u = res["ping"], res["users"]
    measured = res.get("measured", {})
    p95 = f"{u['p95_s']:.2f} s" if u.get("p95_s") is not None else "-"
    return ["## rx-api (REST)", "",
            f"bench/api_rest.py, measured {measured.get('date', '?')} at commit `{measured.get('commit', '?')}`: a "
            f"real master, {p['minions']} real minions, the rx-api process; medians of {p['runs']} runs.", "",
            "| what | result |", "|---|---|",
            f"| `POST /` local test.ping to {p['minions']} minions (keep-alive connection) | {p['api_ms']:.1f} ms |",
            f"| AsyncLocalClient.cmd, same job, with the user's token / as root | {p['client_user_ms']:.1f} / "
            f"{p['client_root_ms']:.1f} ms |",
            f"| what rx-api adds | {p['overhead_ms']:+.1f} ms |",
            f"| {u['users']} concurrent users: login + local test.ping each | {u['wall_s']:.1f} s in all, p50 "
            f"{u['p50_s'] or 0:.2f} s, p95 {p95}, {u['failures']} failures |", ""]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.api_rest", description=__doc__.split("\n\n")[0])
    p.add_argument("--minions", type=int, default=10)
    p.add_argument("--runs", type=int, default=11)
    p.add_argument("--users", type=int, default=100)
    a = p.parse_args(argv)
    print(json.dumps(bench_api_rest(a.minions, a.runs, a.users), indent=2))


if __name__ == "__main__":
    main()
