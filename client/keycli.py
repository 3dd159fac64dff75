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
from rx.client.termsafe import escape_controls
from rx.config import ConfigError, load_master_config
from rx.master.services import Services, StoreError, open_services
from rx.master.services.keys import KEY_STATES, KeyService

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
            print(escape_controls(item if isinstance(item, str) else f"{item['id']}:  {item['fingerprint']}"))


async def _change(keys: KeyService, act: str, pattern: str | None, opts: argparse.Namespace) -> int:
    found = await keys.candidates(act, pattern, include_rejected=opts.include_rejected,
                                  include_denied=opts.include_denied)
    if not found:
        print(f"No keys to {act}.", file=sys.stderr)
        return EXIT_ERROR
    listing = {state: [k.id for k in found if k.state == state] for state in KEY_STATES}
    _print_keys({s: ids for s, ids in listing.items() if ids}, "text")
    if not _confirm(f"Proceed to {act} {len(found)} key(s)?", opts.yes):
        print("Nothing changed.", file=sys.stderr)
        return EXIT_ERROR
    await keys.apply(act, found)
    for k in found:
        print(f"Key for minion {escape_controls(k.id)} {_PAST[act]}.")
    return EXIT_OK


async def _fingerprints(keys: KeyService, opts: argparse.Namespace) -> int:
    found = await keys.fingerprints(opts.finger or "*")
    listing: dict[str, list] = {s: [{"id": k.id, "fingerprint": k.fingerprint} for k in found if k.state == s]
                                for s in KEY_STATES}
    own = await keys.master_fingerprint() if opts.finger_all else None
    if own is not None:
        listing["local"] = [{"id": "master.pub", "fingerprint": own}]
    _print_keys(listing, opts.out)
    return EXIT_OK if found or own else EXIT_ERROR


async def run_async(opts: argparse.Namespace, services: Services) -> int:
    keys = services.keys
    if opts.list_all:
        _print_keys(await keys.listing(), opts.out)
        return EXIT_OK
    if opts.finger or opts.finger_all:
        return await _fingerprints(keys, opts)
    if opts.accept or opts.accept_all:
        return await _change(keys, "accept", opts.accept, opts)
    if opts.reject or opts.reject_all:
        return await _change(keys, "reject", opts.reject, opts)
    return await _change(keys, "delete", opts.delete, opts)


def run(opts: argparse.Namespace) -> int:
    cfg = load_master_config(opts.config_dir)
    if not os.path.isdir(cfg.pki_dir):
        raise ConfigError(f"pki_dir: {cfg.pki_dir!r} does not exist; has rx-master been started with this config?")
    services = open_services(cfg)
    try:
        return asyncio.run(run_async(opts, services))
    finally:
        services.close()


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_args(argv)
    try:
        code = run(opts)
    except (ConfigError, StoreError) as exc:
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
