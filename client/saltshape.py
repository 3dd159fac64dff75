"""Salt's LocalClient shapes: pure translations from what rx's gather yields to what the synchronous
LocalClient (rx.client.synclocal) returns, so a script written for `salt.client.LocalClient` runs unchanged.

The shapes were observed on Salt 3007.8 (tests/support/salt_shapes.py records them; the contract test
tests/integration/test_localclient_contract.py holds rx to them):

- a return: `{"ret": value, "retcode": n, "jid": jid}` (cmd_iter, cmd_cli, cmd(full_return=True));
- a minion that did not return, in the iterators: `{"failed": True}`; in `cmd_cli` (and `cmd` with
  `expect_minions`): `{"out": "no_return", "ret": "Minion did not return. [Not connected]" or
  "... [No response]" + how to look the job up, "retcode": 1}`; in `cmd`: `False`;
- an id of a list target that no accepted minion has is reported as missing by every gathering method,
  with or without `expect_minions` (Salt's "missing" minions);
- `run_job`: `{"jid", "minions"}`, `{}` when nothing matched; `pub`: `{"jid": None, "minions": []}` then.

With `rx_reasons`, a missing minion also carries rx's reason (`"reason": "not connected"`, "no response",
"no grains cached", "still running", "no accepted key") and its text says it: `Minion did not return.
[not connected]`, as `rx` prints it.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from rx.client.results import Published

EX_GENERIC = 1
"""The retcode Salt gives a minion that did not return, in cmd_cli."""
NO_KEY = "no accepted key"
"""rx's reason for an id of a list target that is not an accepted minion's."""
NOT_CONNECTED = "not connected"

_KWARG = re.compile(r"([^\W\d][\w.-]*)=(?!=)(.*)")
"""`name=value` in a string argument: a keyword argument (a value over several lines stays positional)."""


def condition_args(fun: str | list, arg: Sequence, kwarg: dict | None) -> tuple[list, dict]:
    """Salt's ways of passing keyword arguments inside `arg`, as rx publishes them (positional, keyword):
    a dict with `"__kwarg__": True` (what Salt's client makes of `kwarg=`) and a `name=value` string
    (values read as YAML scalars, as `rx` and `salt` read them on the command line).  `kwarg` wins over both.
    A multi-function job's argument groups are passed as they are."""
    if isinstance(arg, (str, bytes, dict)) or not isinstance(arg, Sequence):
        raise TypeError(f"arg must be a list of arguments, not {type(arg).__name__}")
    if isinstance(fun, list):
        return list(arg), dict(kwarg or {})
    args: list = []
    kwargs: dict = {}
    for item in arg:
        if isinstance(item, dict) and item.get("__kwarg__") is True:
            kwargs.update((k, v) for k, v in item.items() if k != "__kwarg__")
        elif isinstance(item, str) and (m := _KWARG.fullmatch(item)):
            from rx.client.cli import parse_value  # loaded only when a script passes name=value strings
            kwargs[m.group(1)] = parse_value(m.group(2))
        else:
            args.append(item)
    kwargs.update(kwarg or {})
    return args, kwargs


def timeout_of(value: Any) -> float | None:
    """A `timeout` as Salt takes it: a number, or a string holding one; anything else means the config's
    (None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def listed_ids(tgt: str | list, tgt_type: str) -> list[str]:
    """The ids a list target names (none for other target types)."""
    if tgt_type != "list":
        return []
    if isinstance(tgt, list):
        return [str(t) for t in tgt]
    return [t for t in re.split(r"[,\s]+", tgt) if t]


def unmatched(tgt: str | list, tgt_type: str, minions: Sequence[str]) -> list[str]:
    """The ids of a list target that no accepted minion has, when it matched some (Salt reports them as missing;
    a target that matched none is "nothing matched")."""
    if not minions:
        return []
    known = set(minions)
    return sorted({i for i in listed_ids(tgt, tgt_type) if i not in known})


def pub_data(pub: Published | None) -> dict:
    """`run_job`'s answer: `{"jid", "minions"}`, or `{}` when the target matched no minion."""
    if pub is None or not pub.minions:
        return {}
    return {"jid": pub.jid, "minions": list(pub.minions)}


def returned(item: dict) -> dict:
    """A minion's return as Salt's iterators yield it (rx's `success` is left out: Salt has none)."""
    return {"ret": item.get("ret"), "retcode": item.get("retcode"), "jid": item.get("jid")}


def iter_missing(item: dict, rx_reasons: bool = False) -> dict:
    """A minion that did not return, as cmd_iter yields it with `expect_minions`."""
    out: dict[str, Any] = {"failed": True}
    if rx_reasons:
        out["reason"] = item.get("reason")
    return out


def cli_missing(item: dict, jid: str, rx_reasons: bool = False) -> dict:
    """A minion that did not return, as cmd_cli yields it (and cmd keeps its `ret` with `expect_minions`)."""
    reason = item.get("reason") or ""
    if rx_reasons:
        return {"out": "no_return", "ret": f"Minion did not return. [{reason}]", "retcode": EX_GENERIC,
                "reason": reason}
    if reason == NOT_CONNECTED:
        text = "Minion did not return. [Not connected]"
    else:
        text = ("Minion did not return. [No response]\nIt may still run the job; its return is stored when it "
                f"comes, to be read with:\n\nrx-run jobs.lookup_jid {jid}")
    return {"out": "no_return", "ret": text, "retcode": EX_GENERIC}


def cached(returns: dict[str, dict]) -> dict:
    """Stored returns (`{id: {"return", ...}}`, as the master's lookup gives them) as get_cache_returns shows them."""
    return {mid: {"ret": data.get("return")} for mid, data in returns.items()}
