"""The LocalClient contract: the calls a script makes on Salt's LocalClient, each run the same way on Salt
(tests/support/salt_shapes.py, by hand, records Salt's results in tests/integration/data/salt_localclient.json)
and on rx (tests/integration/test_localclient_contract.py asserts rx gives the recorded results).

Plain Python, no rx import: Salt's interpreter runs this file too (`python lc_contract.py --client
salt.client --c-path MASTER_CONFIG_FILE`, or `--client rx.client` to see rx's side).

The fleet: minions m1 and m2 running, m3 accepted but not running, no minion m9.  `normalize` keeps what a
script can rely on: a jid becomes "<jid>", a "Minion did not return. [...]" text its first sentence (Salt
picks [Not connected] or [No response] by what its cache says; rx by what it knows), and it drops what rx
does not have on purpose: Salt's `__pub_*` keyword arguments and the `out: nested` outputter hint.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import re
import sys
import time
from typing import Any, Callable

UNKNOWN_JID = "20200101000000000000"
FAST = {"gather_job_timeout": 1}
"""With a minion that does not return, the probe's own wait (the calls give `timeout` 2 too)."""
METHODS = ["__init__", "cmd", "cmd_iter", "cmd_iter_no_block", "cmd_async", "cmd_cli", "cmd_batch", "cmd_subset",
           "run_job", "pub", "get_cli_returns", "get_event_iter_returns", "get_cache_returns", "gather_job_info",
           "get_iter_returns"]
_JID = re.compile(r"[0-9]{20}")
MISSING = "Minion did not return."


def normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()
                if not str(k).startswith("__pub_") and not (k == "out" and v == "nested")}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        if _JID.fullmatch(value):
            return "<jid>"
        if value.startswith(MISSING):
            return MISSING
    return value


def chunks(items: Any) -> list:
    """An iterator's chunks in a stable order (minions return in any order); Nones dropped."""
    return sorted((normalize(i) for i in items if i is not None), key=lambda c: json.dumps(c, sort_keys=True))


def merged(items: Any) -> dict:
    """`{id: return}` from get_cli_returns' `{id: {"ret": return}}` chunks (what other tests compare)."""
    return {mid: data["ret"] for chunk in items for mid, data in chunk.items()}


def _new_jid() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"{int(time.time() * 1e6) % 1_000_000:06d}"


def _until(ready: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g}s for {what}")
        time.sleep(0.1)


def _stored(c: Any, jid: str, ids: list[str]) -> None:
    _until(lambda: set(c.get_cache_returns(jid)) >= set(ids), f"the returns of {jid} in the job cache")


def _no_block(items: Any) -> dict:
    items = list(items)
    return {"returns": chunks(items), "nones": None in items}


def _verbose(c: Any) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        got = chunks(c.cmd_cli("m1", "test.ping", verbose=True))
    first = out.getvalue().splitlines()[0]
    return {"chunks": got, "printed": re.sub(r"[0-9]{20}", "<jid>", first)}


def _jid_given(c: Any) -> Any:
    jid = _new_jid()
    r = c.cmd("m1", "test.echo", ["hi"], jid=jid, full_return=True)
    return {"ret": r["m1"]["ret"], "same_jid": r["m1"]["jid"] == jid}


def _cli_after(c: Any) -> Any:
    pub = c.run_job("m1,m2", "test.echo", ["x"], "list")
    _stored(c, pub["jid"], ["m1", "m2"])
    return [normalize(x) for x in c.get_cli_returns(pub["jid"], pub["minions"], timeout=5)]


def _cli_live(c: Any) -> Any:
    pub = c.run_job("m1,m2", "test.sleep", [1], "list")
    got = list(c.get_cli_returns(pub["jid"], pub["minions"], timeout=10))
    return {"merged": normalize({k: v for x in got for k, v in x.items()}),
            "value_keys": sorted(sorted(v) for v in {tuple(sorted(v)) for x in got for v in x.values()})}


def _cli_down(c: Any) -> Any:
    pub = c.run_job("m1,m3", "test.echo", ["y"], "list")
    got = list(c.get_cli_returns(pub["jid"], pub["minions"], timeout=2))
    return normalize({k: v for x in got for k, v in x.items()})


def _event_live(c: Any) -> Any:
    pub = c.run_job("m1,m2", "test.sleep", [1], "list")
    return chunks(c.get_event_iter_returns(pub["jid"], pub["minions"], timeout=5))


def _cache(c: Any) -> Any:
    pub = c.run_job("m1,m2", "test.echo", ["z"], "list")
    _stored(c, pub["jid"], ["m1", "m2"])
    return normalize(c.get_cache_returns(pub["jid"]))


def _job_info(c: Any) -> Any:
    pub = c.run_job("m1", "test.sleep", [4])
    _until(lambda: c.cmd("m1", "saltutil.find_job", [pub["jid"]]).get("m1"), "m1 to run the job")
    info = c.gather_job_info(pub["jid"], "m1", "glob")
    got = {k: v for x in c.get_cli_returns(info["jid"], info["minions"], timeout=5) for k, v in x.items()}
    found = got["m1"]["ret"]
    return {"info": normalize(info), "found": {"jid_matches": found.get("jid") == pub["jid"], "fun": found.get("fun")}}


def _iter_live(c: Any) -> Any:
    pub = c.run_job("m1,m2", "test.sleep", [1], "list")
    return chunks(c.get_iter_returns(pub["jid"], pub["minions"], timeout=3))


def _iter_expect(c: Any) -> Any:
    pub = c.run_job("m1,m3", "test.sleep", [1], "list")
    return chunks(c.get_iter_returns(pub["jid"], pub["minions"], timeout=2, expect_minions=True, **FAST))


def _subset_one(c: Any) -> Any:
    got = c.cmd_subset("m1,m2", "test.ping", tgt_type="list", subset=1)
    return {"count": len(got), "values": list(got.values())}


SCENARIOS: dict[str, Callable[[Any], Any]] = {
    "cmd.up": lambda c: normalize(c.cmd(["m1", "m2"], "test.ping", tgt_type="list")),
    "cmd.positional": lambda c: normalize(c.cmd("m1", "test.echo", ["hi"], 5, "glob")),
    "cmd.down_is_false": lambda c: normalize(c.cmd("m1,m3", "test.ping", [], 2, "list", **FAST)),
    "cmd.glob_with_down": lambda c: normalize(c.cmd("m*", "test.ping", timeout=2, **FAST)),
    "cmd.unknown_in_list": lambda c: normalize(c.cmd("m1,m9", "test.ping", tgt_type="list")),
    "cmd.expect_minions": lambda c: normalize(c.cmd("m1,m3", "test.ping", [], 2, "list", expect_minions=True, **FAST)),
    "cmd.full_return": lambda c: normalize(c.cmd("m1", "test.retcode", [3], full_return=True)),
    "cmd.full_return_down": lambda c: normalize(c.cmd("m1,m3", "test.ping", [], 2, "list", full_return=True, **FAST)),
    "cmd.no_match": lambda c: normalize(c.cmd("nomatch*", "test.ping")),
    "cmd.unknown_function": lambda c: normalize(c.cmd("m1", "test.nope", full_return=True)),
    "cmd.kwarg": lambda c: normalize(c.cmd("m1", "test.arg", ["a", 1], kwarg={"k": "v"})),
    "cmd.kwarg_string": lambda c: normalize(c.cmd("m1", "test.arg", ["a", "k=v", "n=3"])),
    "cmd.kwarg_dict": lambda c: normalize(c.cmd("m1", "test.arg", ["a", {"k": "v", "__kwarg__": True}])),
    "cmd.multi": lambda c: normalize(c.cmd("m1", ["test.ping", "test.echo"], [[], ["x"]])),
    "cmd.ret_ignored": lambda c: normalize(c.cmd("m1", "test.echo", ["hi"], ret="nosuch")),
    "cmd.jid_given": _jid_given,
    "cmd_iter.up": lambda c: chunks(c.cmd_iter("m1,m2", "test.ping", tgt_type="list")),
    "cmd_iter.down": lambda c: chunks(c.cmd_iter("m1,m3", "test.ping", [], 2, "list", **FAST)),
    "cmd_iter.expect_minions": lambda c: chunks(c.cmd_iter("m1,m3", "test.ping", [], 2, "list", expect_minions=True,
                                                           **FAST)),
    "cmd_iter.unknown_in_list": lambda c: chunks(c.cmd_iter("m1,m9", "test.ping", tgt_type="list")),
    "cmd_iter.no_match": lambda c: normalize(list(c.cmd_iter("nomatch*", "test.ping"))),
    "cmd_iter.yield_pub_data": lambda c: normalize(list(c.cmd_iter("m1", "test.ping", yield_pub_data=True))),
    "cmd_iter_no_block.sleep": lambda c: _no_block(c.cmd_iter_no_block("m1,m2", "test.sleep", [1], tgt_type="list")),
    "cmd_iter_no_block.expect_minions": lambda c: _no_block(c.cmd_iter_no_block(
        "m1,m3", "test.ping", [], 2, "list", expect_minions=True, **FAST)),
    "cmd_iter_no_block.no_match": lambda c: normalize(list(c.cmd_iter_no_block("nomatch*", "test.ping"))),
    "cmd_cli.up": lambda c: chunks(c.cmd_cli("m1,m2", "test.ping", tgt_type="list")),
    "cmd_cli.down": lambda c: chunks(c.cmd_cli("m1,m3", "test.ping", [], 2, "list", **FAST)),
    "cmd_cli.expect_minions": lambda c: chunks(c.cmd_cli("m1,m3", "test.ping", [], 2, "list", expect_minions=True,
                                                         **FAST)),
    "cmd_cli.verbose": _verbose,
    "cmd_cli.progress": lambda c: normalize(list(c.cmd_cli("m1", "test.ping", progress=True))),
    "cmd_cli.unknown_in_list": lambda c: chunks(c.cmd_cli("m1,m9", "test.ping", tgt_type="list")),
    "cmd_cli.no_match": lambda c: normalize(list(c.cmd_cli("nomatch*", "test.ping"))),
    "cmd_async.jid": lambda c: normalize(c.cmd_async("m1", "test.ping")),
    "cmd_async.no_match": lambda c: normalize(c.cmd_async("nomatch*", "test.ping")),
    "run_job.match": lambda c: normalize({k: sorted(v) if k == "minions" else v
                                          for k, v in c.run_job("m*", "test.ping").items()}),
    "run_job.positional": lambda c: normalize(c.run_job("m1", "test.echo", ["x"], "glob", "", 5)),
    "run_job.no_match": lambda c: normalize(c.run_job("nomatch*", "test.ping")),
    "run_job.unknown_in_list": lambda c: normalize(c.run_job("m1,m9", "test.ping", tgt_type="list")),
    "pub.match": lambda c: normalize({k: sorted(v) if k == "minions" else v
                                      for k, v in c.pub("m1,m2", "test.ping", tgt_type="list").items()}),
    "pub.no_match": lambda c: normalize(c.pub("nomatch*", "test.ping")),
    "cmd_batch.one_at_a_time": lambda c: chunks(c.cmd_batch("m1,m2", "test.ping", tgt_type="list", batch=1)),
    "cmd_batch.retcode": lambda c: chunks(c.cmd_batch("m1,m2", "test.retcode", [2], tgt_type="list", batch="50%")),
    "cmd_batch.with_down": lambda c: chunks(c.cmd_batch("m*", "test.ping", batch=2, timeout=2, **FAST)),
    "cmd_batch.no_match": lambda c: chunks(c.cmd_batch("nomatch*", "test.ping")),
    "cmd_batch.positional": lambda c: chunks(c.cmd_batch("m1,m2", "test.echo", ["b"], "list", "", None, 1)),
    "cmd_subset.default": lambda c: normalize(c.cmd_subset("m1,m2", "test.ping", tgt_type="list")),
    "cmd_subset.one": _subset_one,
    "cmd_subset.cli": lambda c: chunks(c.cmd_subset("m1,m2", "test.ping", tgt_type="list", cli=True)),
    "cmd_subset.full_return": lambda c: normalize(c.cmd_subset("m1,m2", "test.ping", tgt_type="list",
                                                               full_return=True)),
    "cmd_subset.no_match": lambda c: normalize(c.cmd_subset("nomatch*", "test.ping")),
    "cmd_subset.positional": lambda c: len(c.cmd_subset("m1,m2", "test.echo", ["s"], "list", "", None, 1)),
    "get_cli_returns.after": _cli_after,
    "get_cli_returns.live": _cli_live,
    "get_cli_returns.down": _cli_down,
    "get_cli_returns.unknown_jid": lambda c: normalize(list(c.get_cli_returns(UNKNOWN_JID, ["m1"], timeout=1))),
    "get_event_iter_returns.live": _event_live,
    "get_event_iter_returns.unknown_jid": lambda c: normalize(list(c.get_event_iter_returns(UNKNOWN_JID, ["m1"],
                                                                                           timeout=1))),
    "get_cache_returns.stored": _cache,
    "get_cache_returns.unknown_jid": lambda c: normalize(c.get_cache_returns(UNKNOWN_JID)),
    "gather_job_info.running": _job_info,
    "get_iter_returns.live": _iter_live,
    "get_iter_returns.expect_minions": _iter_expect,
    "get_iter_returns.unknown_jid": lambda c: normalize(list(c.get_iter_returns(UNKNOWN_JID, ["m1"], timeout=1))),
    "opts": lambda c: {"dict": isinstance(c.opts, dict), "keys": sorted({"timeout", "sock_dir", "cachedir"}
                                                                           & set(c.opts))},
}


def run(client: Any, names: list[str] | None = None) -> dict[str, Any]:
    """Each scenario's normalized result, or `{"raises": ExceptionName}`."""
    out: dict[str, Any] = {}
    for name in names or list(SCENARIOS):
        try:
            out[name] = SCENARIOS[name](client)
        except Exception as exc:  # recorded as such: the other side must raise the same
            out[name] = {"raises": type(exc).__name__}
    return out


def signatures(cls: type) -> dict[str, list[list]]:
    """Each method's named parameters in order: [name, default (repr, or None when required)]."""
    out: dict[str, list[list]] = {}
    for name in METHODS:
        params = list(inspect.signature(getattr(cls, name)).parameters.values())[1:]
        out[name] = [[p.name, None if p.default is p.empty else repr(p.default)] for p in params
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--client", required=True, help="salt.client or rx.client")
    p.add_argument("--c-path", required=True, help="the master's config file")
    p.add_argument("--out", help="write the JSON to this file (default: stdout, where Salt prints notices too)")
    p.add_argument("names", nargs="*", help="scenarios (default: all)")
    args = p.parse_args(argv)
    mod = importlib.import_module(args.client)
    client = mod.LocalClient(args.c_path)
    try:
        result = {"scenarios": run(client, args.names or None), "signatures": signatures(mod.LocalClient)}
    finally:
        client.destroy()
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
