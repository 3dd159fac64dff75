"""`rx-key`: list, print, accept, reject and delete minion keys on the master, rotate the session key, and
make a minion's key pair ahead of time.  Salt's salt-key flags and rules: with no action it lists every
key; -r takes pending keys unless --include-accepted/--include-denied say more.

Removing or rejecting an accepted key rotates the session key serial, so that minion can neither
read later publications nor return results.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys

from rx import __version__
from rx.client.termsafe import escape_controls
from rx.config import ConfigError, load_master_config
from rx.master.services import Services, StoreError, open_services
from rx.master.services.keys import KEY_STATES, KeyService

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
_ORDER = ("accepted", "denied", "pending", "rejected")
_HEADINGS = {"local": "Local Keys (the master's own; put it in a minion's master_finger):",
             "accepted": "Accepted Keys:", "denied": "Denied Keys:", "pending": "Unaccepted Keys:",
             "rejected": "Rejected Keys:"}
LIST_STATES = {"acc": "accepted", "accepted": "accepted", "un": "pending", "unaccepted": "pending",
               "pre": "pending", "rej": "rejected", "rejected": "rejected", "den": "denied", "denied": "denied",
               "all": "all"}
"""`-l`'s words (Salt's) and the key state each lists."""
_PAST = {"accept": "accepted", "reject": "rejected", "delete": "deleted"}
EPILOG = """exit codes:
  0    done (or listed)
  1    no key matched, or the change was not confirmed
  2    usage error, or a config or key store that cannot be read
  5    permission denied (run as the master's user or root)
  130  interrupted

a minion key made ahead of time (--gen-keys m3 --gen-keys-dir DIR) goes in two places: DIR/m3.key as the
minion's <pki_dir>/minion.key (mode 0600), DIR/m3.pub as the master's <pki_dir>/minions/m3 (accepted)
"""


def _list_state(word: str) -> str:
    try:
        return LIST_STATES[word]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{word!r} is not a valid argument to --list (one of "
                                         f"{', '.join(LIST_STATES)})") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rx-key", description="Manage minion keys on the rx master (with no action: "
                                "list all keys).", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    act = p.add_argument_group("actions").add_mutually_exclusive_group()
    act.add_argument("-l", "--list", metavar="STATE", type=_list_state, dest="list_state",
                     help="list the keys in one state: acc, un (or pre), rej, den, or all")
    act.add_argument("-L", "--list-all", dest="list_all", action="store_true", help="list all keys")
    act.add_argument("-a", "--accept", metavar="GLOB", help="accept pending keys matching GLOB")
    act.add_argument("-A", "--accept-all", action="store_true", help="accept all pending keys")
    act.add_argument("-r", "--reject", metavar="GLOB", help="reject pending keys matching GLOB (accepted and denied "
                                                           "ones too with --include-accepted/--include-denied)")
    act.add_argument("-R", "--reject-all", action="store_true", help="reject all pending keys")
    act.add_argument("-d", "--delete", metavar="GLOB", help="delete keys matching GLOB, in any state")
    act.add_argument("-D", "--delete-all", action="store_true", help="delete all keys")
    act.add_argument("-p", "--print", metavar="GLOB", dest="print_glob", help="print the public keys matching GLOB")
    act.add_argument("-P", "--print-all", action="store_true", help="print all public keys")
    act.add_argument("-f", "--finger", metavar="GLOB", help="print fingerprints of keys matching GLOB")
    act.add_argument("-F", "--finger-all", action="store_true",
                     help="print fingerprints of all keys, the master's own included")
    act.add_argument("--gen-keys", metavar="NAME", help="make a minion key pair NAME.key and NAME.pub in "
                                                        "--gen-keys-dir, to preseed a minion (see below)")
    act.add_argument("--rotate", action="store_true", help="rotate the session key now: every minion authenticates "
                                                           "again (Salt: the AES key rotation)")
    opt = p.add_argument_group("options")
    opt.add_argument("--gen-keys-dir", metavar="DIR", default=".", help="where --gen-keys writes (default: .)")
    opt.add_argument("--include-accepted", action="store_true", help="with -r/-R: also reject accepted keys")
    opt.add_argument("--include-rejected", action="store_true", help="with -a/-A: also accept rejected keys")
    opt.add_argument("--include-denied", action="store_true", help="with -a/-A/-r/-R: also take denied keys")
    opt.add_argument("--include-all", action="store_true",
                     help="with -a/-A: also rejected keys; with -r/-R: also accepted keys")
    opt.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors and what was asked for "
                                                                "(no key listing before a change, no line per key)")
    opt.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    opt.add_argument("--out", "--output", choices=("text", "json"), default="text", help="output format "
                                                                                         "(default text)")
    p.add_argument("--version", action="version", version=f"rx-key {__version__}")
    return p


def _confirm(question: str, yes: bool, default: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("not a terminal, cannot ask for confirmation: add -y")
    answer = input(f"{question} {'[n/Y]' if default else '[N/y]'} ").strip().lower()
    return default if not answer else answer in ("y", "yes")


def _print_keys(by_state: dict[str, list], out: str, *, skip_empty: bool = False) -> None:
    if out == "json":
        print(json.dumps(by_state, indent=2, sort_keys=True))
        return
    for state in ("local",) + _ORDER:
        if state not in by_state or (skip_empty and not by_state[state]):
            continue
        print(_HEADINGS[state])
        for item in by_state[state]:
            print(escape_controls(item if isinstance(item, str) else f"{item['id']}:  {item['value']}"))


def _no_match(act: str, pattern: str | None, opts: argparse.Namespace) -> int:
    if act == "delete":
        states = "any"
    else:
        other = (("accepted", opts.include_accepted), ("rejected", opts.include_rejected),
                 ("denied", opts.include_denied))
        names = ["unaccepted"] + [name for name, on in other if on]
        states = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    print(f"The key glob {escape_controls(pattern or '*')!r} does not match any {states} keys.", file=sys.stderr)
    return EXIT_ERROR


async def _change(keys: KeyService, act: str, pattern: str | None, opts: argparse.Namespace) -> int:
    found = await keys.candidates(act, pattern, include_rejected=opts.include_rejected,
                                  include_denied=opts.include_denied, include_accepted=opts.include_accepted)
    if not found:
        return _no_match(act, pattern, opts)
    found.sort(key=lambda k: (_ORDER.index(k.state), k.id))  # as listed
    if not opts.quiet:
        print(f"The following keys are going to be {_PAST[act]}:")
        _print_keys({s: [k.id for k in found if k.state == s] for s in KEY_STATES}, "text", skip_empty=True)
    if not _confirm("Proceed?", opts.yes, default=act != "delete"):
        print("Nothing changed.", file=sys.stderr)
        return EXIT_ERROR
    await keys.apply(act, found)
    if not opts.quiet:
        for k in found:
            print(f"Key for minion {escape_controls(k.id)} {_PAST[act]}.")
    return EXIT_OK


def _listing(found: list, value: str) -> dict[str, list]:
    return {s: [{"id": k.id, "value": getattr(k, value)} for k in found if k.state == s] for s in KEY_STATES}


async def _fingerprints(keys: KeyService, opts: argparse.Namespace) -> int:
    found = await keys.fingerprints(opts.finger or "*")
    listing = _listing(found, "fingerprint")
    own = await keys.master_fingerprint() if opts.finger_all else None
    if own is not None:
        listing["local"] = [{"id": "master.pub", "value": own}]
    if opts.out == "json":
        listing = {s: [{"id": i["id"], "fingerprint": i["value"]} for i in items] for s, items in listing.items()}
    _print_keys(listing, opts.out, skip_empty=True)
    return EXIT_OK if found or own else EXIT_ERROR


async def _publics(keys: KeyService, opts: argparse.Namespace) -> int:
    found = await keys.keys(opts.print_glob or "*")
    if opts.out == "json":
        print(json.dumps({s: {k.id: base64.b64encode(k.public).decode() for k in found if k.state == s}
                          for s in KEY_STATES if any(k.state == s for k in found)}, indent=2, sort_keys=True))
    else:
        _print_keys({s: [{"id": k.id, "value": base64.b64encode(k.public).decode()} for k in found if k.state == s]
                     for s in KEY_STATES}, "text", skip_empty=True)
    return EXIT_OK if found else EXIT_ERROR


async def _rotate(keys: KeyService, opts: argparse.Namespace) -> int:
    serial = await keys.rotate()
    if opts.out == "json":
        print(json.dumps({"serial": serial}))
    elif not opts.quiet:
        print(f"Session key rotated (serial {serial}): every minion authenticates again before its next job.")
    return EXIT_OK


async def run_async(opts: argparse.Namespace, services: Services) -> int:
    keys = services.keys
    if opts.list_state not in (None, "all"):
        _print_keys({opts.list_state: (await keys.listing())[opts.list_state]}, opts.out)
        return EXIT_OK
    if opts.finger or opts.finger_all:
        return await _fingerprints(keys, opts)
    if opts.print_glob or opts.print_all:
        return await _publics(keys, opts)
    if opts.rotate:
        return await _rotate(keys, opts)
    if opts.accept or opts.accept_all:
        return await _change(keys, "accept", opts.accept, opts)
    if opts.reject or opts.reject_all:
        return await _change(keys, "reject", opts.reject, opts)
    if opts.delete or opts.delete_all:
        return await _change(keys, "delete", opts.delete, opts)
    _print_keys(await keys.listing(), opts.out)
    return EXIT_OK


def _gen_keys(opts: argparse.Namespace) -> int:
    from rx.client.keygen import KeyGenError, gen_keys
    try:
        pair = gen_keys(opts.gen_keys, opts.gen_keys_dir)
    except (KeyGenError, OSError) as exc:
        print(f"rx-key: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps({"private": str(pair.private), "public": str(pair.public), "fingerprint": pair.fingerprint,
                      "made": pair.made}) if opts.out == "json" else pair.fingerprint)
    if not opts.quiet:
        print(("Made" if pair.made else "Kept the existing") + f" {pair.private} and {pair.public}. Install "
              f"{pair.private.name} as the minion's <pki_dir>/minion.key (mode 0600); to accept the minion before it "
              f"starts, copy {pair.public.name} to the master's <pki_dir>/minions/{opts.gen_keys}.", file=sys.stderr)
    return EXIT_OK


def run(opts: argparse.Namespace) -> int:
    if opts.gen_keys is not None:
        return _gen_keys(opts)
    if opts.include_all:
        opts.include_rejected = opts.include_rejected or bool(opts.accept or opts.accept_all)
        opts.include_accepted = opts.include_accepted or bool(opts.reject or opts.reject_all)
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
