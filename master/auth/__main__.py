"""`python -m rx.master.auth --add-user NAME`: add or change a user of the `file` eauth back end (the file
named by `external_auth: file: ^filename` in the master config, or `--file`); `--delete-user NAME`
removes one.  The password is asked twice on the terminal, or read (one line) from standard input
with `--password-stdin`."""

from __future__ import annotations

import argparse
import getpass
import sys

from rx.master.auth.passwords import PasswordFileError, set_user


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rx.master.auth", description=__doc__.split("\n\n")[0])
    act = p.add_mutually_exclusive_group(required=True)
    act.add_argument("--add-user", metavar="NAME", help="add the user, or set a new password")
    act.add_argument("--delete-user", metavar="NAME", help="remove the user")
    p.add_argument("--file", help="the password file (default: external_auth: file: ^filename of the master config)")
    p.add_argument("-c", "--config-dir", help="the master's config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    opts = p.parse_args(argv)
    path = opts.file or _configured(opts.config_dir)
    if not path:
        p.error("no --file, and the master config sets no external_auth: file: ^filename")
    password = None
    if opts.add_user:
        if opts.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {opts.add_user}: ")
            if getpass.getpass("again: ") != password:
                print("the passwords differ; nothing changed", file=sys.stderr)
                return 1
        if not password:
            print("an empty password is not allowed; nothing changed", file=sys.stderr)
            return 1
    try:
        set_user(path, opts.add_user or opts.delete_user, password)
    except (PasswordFileError, OSError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    print(f"{'set' if password else 'removed'} {opts.add_user or opts.delete_user} in {path}", file=sys.stderr)
    return 0


def _configured(config_dir: str | None) -> str:
    from rx.config import load_master_config
    cfg = load_master_config(config_dir)
    return str((cfg.external_auth.get("file") or {}).get("^filename", ""))


if __name__ == "__main__":
    sys.exit(main())
