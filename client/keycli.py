"""`rx-key`: list, accept, reject and delete minion keys on the master.

Removing or rejecting an accepted key rotates the session key serial, so that
minion can neither read later publications nor return results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from rx import __version__
from rx.config import ConfigError, MasterConfig, load_master_config
from rx.master.grainscache import GrainsCache
from rx.master.keys import STATES, KeyError_, KeyInfo, KeyStore
from rx.master.session import SessionState
from rx.transport.crypto import fingerprint

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
_HEADINGS = {"local": "Local Keys (the master's own; put it in a minion's master_finger):", "accepted": "Accepted Keys:", "denied": "Denied Keys:", "pending": "Unaccepted Keys:",
             "rejected": "Rejected Keys:"}


_PAST = {"accept": "accepted", "reject": "rejected", "delete": "deleted"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rx-key", description="Manage minion keys on the rx master.")
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    act = p.add_mutually_exclusive_group(required=True)
    act.add_argument("-L", "--list", dest="list_all", action="store_true", help="list all keys")
    act.add_argument("-a", "--accept", metavar="GLOB", help="accept pending keys matching GLOB")
    act.add_argument("-A", "--accept-all", action="store_true", help="accept all pending keys")
    act.add_argument("-r", "--reject", metavar="GLOB", help="reject pending or accepted keys matching GLOB")
    act.add_argument("-R", "--reject-all", action="store_true", help="reject all pending keys")
    act.add_argument("-d", "--delete", metavar="GLOB", help="delete keys matching GLOB, in any state")
    act.add_argument("-D", "--delete-all", action="store_true", help="delete all keys")
    act.add_argument("-f", "--finger", metavar="GLOB", help="print fingerprints of keys matching GLOB")
    act.add_argument("-F", "--finger-all", action="store_true",
                     help="print fingerprints of all keys, the master's own included")
    p.add_argument("--include-rejected", action="store_true", help="with -a/-A: also accept rejected keys")
    p.add_argument("--include-denied", action="store_true", help="with -a/-A: also accept denied keys")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--out", choices=("text", "json"), default="text", help="output format (default text)")
    p.add_argument("--version", action="version", version=f"rx-key {__version__}")
    return p


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("not a terminal, cannot ask for confirmation: add -y")
    return input(f"{question} [n/Y] ").strip().lower() in ("", "y", "yes")


def _print_keys(by_state: dict[str, list], out: str) -> None:
    if out == "json":
        print(json.dumps(by_state, indent=2, sort_keys=True))
        return
    for state in ("local", "accepted", "denied", "pending", "rejected"):
        if state == "local" and state not in by_state:
            continue
        print(_HEADINGS[state])
        for item in by_state.get(state, []):
            print(item if isinstance(item, str) else f"{item['id']}:  {item['fingerprint']}")


def _fire(cfg: MasterConfig, events: list[tuple[str, dict]]) -> None:
    """Tell a running master's event bus what changed (quietly skipped if it is not running)."""
    if not events or not os.path.exists(cfg.event_pull_ipc):
        return
    import zmq.asyncio
    from rx.transport.channels import EventBus

    async def send() -> None:
        ctx = zmq.asyncio.Context()
        bus = EventBus(ctx, cfg.event_pull_ipc)
        for tag, data in events:
            await bus.fire(tag, data)
        bus.close()
        ctx.term()
    asyncio.run(send())


def _change(cfg: MasterConfig, store: KeyStore, keys: list[KeyInfo], to_state: str | None, opts: argparse.Namespace,
            verb: str) -> int:
    if not keys:
        print(f"No keys to {verb}.", file=sys.stderr)
        return EXIT_ERROR
    listing = {state: [k.id for k in keys if k.state == state] for state in STATES}
    _print_keys({s: ids for s, ids in listing.items() if ids}, "text")
    if not _confirm(f"Proceed to {verb} {len(keys)} key(s)?", opts.yes):
        print("Nothing changed.", file=sys.stderr)
        return EXIT_ERROR
    revoked = False
    for k in keys:
        if to_state is None:
            store.remove(k.state, k.id)
            GrainsCache(cfg.cachedir).remove(k.id)
        else:
            store.move(k, to_state)
        revoked |= k.state == "accepted" and to_state != "accepted"
        print(f"Key for minion {k.id} {_PAST[verb]}.")
    if revoked:
        SessionState(cfg.pki_dir).rotate()
    _fire(cfg, [("rx/key", {"id": k.id, "act": verb, "fingerprint": k.fingerprint}) for k in keys])
    return EXIT_OK


def run(opts: argparse.Namespace) -> int:
    cfg = load_master_config(opts.config_dir)
    store = KeyStore(cfg.pki_dir)
    if not store.root.is_dir():
        raise ConfigError(f"pki_dir: {cfg.pki_dir!r} does not exist; has rx-master been started with this config?")
    if opts.list_all:
        _print_keys(store.listing(), opts.out)
        return EXIT_OK
    if opts.finger or opts.finger_all:
        found = store.find(opts.finger or "*")
        listing: dict[str, list] = {s: [{"id": k.id, "fingerprint": k.fingerprint} for k in found if k.state == s]
                                    for s in STATES}
        master_pub = store.root / "master.pub"
        if opts.finger_all and master_pub.exists():
            listing["local"] = [{"id": "master.pub", "fingerprint": fingerprint(master_pub.read_bytes())}]
        _print_keys(listing, opts.out)
        return EXIT_OK if found or listing.get("local") else EXIT_ERROR
    if opts.accept or opts.accept_all:
        states = ("pending",) + (("rejected",) if opts.include_rejected else ()) + (
            ("denied",) if opts.include_denied else ())
        keys = store.find(opts.accept or "*", states)
        if opts.include_denied:
            accepted = {k.id for k in store.find(opts.accept or "*", ("accepted",))}
            clash = sorted({k.id for k in keys if k.state == "denied"} & accepted)
            if clash:
                raise ConfigError(f"cannot accept denied key(s) for {', '.join(clash)}: another key is accepted for "
                                  "that id; delete it first with rx-key -d")
        return _change(cfg, store, keys, "accepted", opts, "accept")
    if opts.reject or opts.reject_all:
        keys = store.find(opts.reject, ("pending", "accepted")) if opts.reject else store.find("*", ("pending",))
        return _change(cfg, store, keys, "rejected", opts, "reject")
    keys = store.find(opts.delete or "*")
    return _change(cfg, store, keys, None, opts, "delete")


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_args(argv)
    try:
        code = run(opts)
    except (ConfigError, KeyError_) as exc:
        print(f"rx-key: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except PermissionError as exc:
        print(f"rx-key: error: permission denied: {exc.filename}: run as the master's user (or root)",
              file=sys.stderr)
        code = 5
    except (KeyboardInterrupt, EOFError):
        print("\nNothing changed.", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
