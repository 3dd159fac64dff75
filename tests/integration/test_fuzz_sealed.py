"""Fuzzing behind the seal (issue 8, item 7): an accepted minion's key seals structure-aware mutations of
valid `_return`, `_minion_event` and `_missed` commands (wrong types, NaN, infinities, huge and negative
numbers, deep nesting, missing and extra fields, random bytes) and sends them to a real master.  No reply
is an internal error, no master process dies or logs a traceback, and the master answers afterwards.

RX_FUZZ_SCALE multiplies the number of cases (CI runs scale 1, a few seconds)."""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections import Counter
from typing import Any, Iterator

from conftest import FakeMinion
from rx.client.local import LocalClient
from rx.transport.codec import MAX_DEPTH, encode
from tests.support.procs import children_of

CASES = 400 * int(os.environ.get("RX_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("RX_FUZZ_SEED", "8007"))


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


ODD_VALUES: list[Any] = [
    math.nan, math.inf, -math.inf, 1e20, -1e20, 1e308, -1, -0.5, 0, 2**31, -(2**31) - 1, 2**63, 2**64 - 1,
    -(2**63), True, False, None, "", "x" * 5000, "../../etc/passwd", "\x00\x1b[2J", b"", b"\xff" * 40, [], {},
    [None] * 50, {"k": {}}, {"grains": {"os": ["x"], "n": math.nan}}, _deep(40), _deep(MAX_DEPTH + 2),
    {b"raw": 1}, "20240102030405060708", "99999999999999999999", "rx/minion/other/start", "start", "grains",
    "test.ping", ["test.ping", 5], "_return",
]


def _bases(jid: str) -> list[dict]:
    """Valid plaintexts of the three sealed commands (`ts` is set when each is sent)."""
    return [
        {"cmd": "_return", "load": {"jid": jid, "fun": "test.ping", "fun_args": [], "retcode": 0, "success": True,
                                    "return": True}},
        {"cmd": "_return", "load": {"jid": jid, "fun": ["test.ping", "test.echo"], "fun_args": [[], ["hi"]],
                                    "retcode": 1, "success": False, "return": {"test.ping": True, "test.echo": "hi"}}},
        {"cmd": "_minion_event", "load": {"tag": "fuzz/hello", "data": {"k": [1, 2.5, "v"]}}},
        {"cmd": "_minion_event", "load": {"tag": "grains", "data": {"grains": {"os": "Linux", "roles": ["web"]}}}},
        {"cmd": "_missed", "load": {"since": time.time() - 5}},
    ]


def _slots(obj: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value in `obj`, containers included."""
    out, todo = [], [obj]
    while todo:
        node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out.append((node, key))
            todo.append(value)
    return out


def _fresh(base: dict) -> dict:
    return copy.deepcopy({**base, "ts": time.time()})


_DELETE = object()


def _maps(plain: dict) -> list[dict]:
    return [plain, *(parent[key] for parent, key in _slots(plain) if isinstance(parent[key], dict))]


def _every_single_mutation(bases: list[dict]) -> Iterator[bytes]:
    """Each field of each command replaced by each odd value or deleted, and each map given an extra field."""
    for base in bases:
        for i in range(len(_slots(_fresh(base)))):
            for value in [*ODD_VALUES, _DELETE]:
                plain = _fresh(base)
                parent, key = _slots(plain)[i]
                if value is _DELETE:
                    del parent[key]
                else:
                    parent[key] = copy.deepcopy(value)
                yield encode(plain)
        for j in range(len(_maps(_fresh(base)))):
            plain = _fresh(base)
            _maps(plain)[j]["extra"] = math.nan
            yield encode(plain)


def _random_mutant(base: dict, rng: random.Random) -> bytes:
    """Several mutations at once, or not a command at all."""
    if rng.random() < 0.08:
        noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        return rng.choice([noise, encode(rng.choice(ODD_VALUES))])
    plain = _fresh(base)
    for _ in range(rng.randint(2, 4)):
        slots = _slots(plain)
        if not slots:
            break
        parent, key = rng.choice(slots)
        kind = rng.choice(["replace", "replace", "replace", "delete", "extra", "nest"])
        if kind == "replace":
            parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif kind == "delete":
            del parent[key]
        elif kind == "extra":
            target = parent if isinstance(parent, dict) else plain
            name = rng.choice(["extra", "id", "minion", "__class__", "jid", "ok"])
            target[name] = copy.deepcopy(rng.choice(ODD_VALUES))
        else:
            for _ in range(rng.choice([1, 3, MAX_DEPTH])):
                parent[key] = [parent[key]]
    return encode(plain)


def _cases(bases: list[dict], rng: random.Random) -> Iterator[bytes]:
    yield from _every_single_mutation(bases)
    for i in range(CASES):
        yield _random_mutant(bases[i % len(bases)], rng)


def test_mutated_sealed_commands_never_cause_an_internal_error(fleet):
    workers = set(children_of(fleet.master.pid))
    with LocalClient(cfg=fleet.cfg) as c:
        jid = c.cmd_async("*", "test.ping")  # the fuzzing minion is expected too, so its returns reach the store
    minion = FakeMinion(fleet, "fuzzer")
    rng = random.Random(SEED)
    seen: Counter = Counter()
    try:
        minion.auth()
        for i, plain in enumerate(_cases(_bases(jid), rng)):
            reply = minion.send_sealed(minion.sealed_plaintext(plain))
            kind = "ok" if reply.get("ok") is True else reply["error"]["type"]
            assert kind != "internal", f"case {i} (seed {SEED}): {plain[:300]!r} -> {reply}"
            seen[kind] += 1
        assert seen["bad_request"] and seen["ok"], seen  # mutants reached the parser and the handlers
        assert minion.send_sealed(minion.sealed("_minion_event", {"tag": "after-fuzz", "data": {}})) == {"ok": True}
    finally:
        minion.close()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("m?", "test.ping") == {"m1": True, "m2": True}
        assert c.cmd("kernel:Linux", "test.ping", tgt_type="grain", timeout=2).keys() >= {"m1", "m2"}
    assert set(children_of(fleet.master.pid)) == workers, "a master process died"
    assert "Traceback" not in fleet.master.output()
