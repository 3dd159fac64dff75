"""`rx-minion`: the process (config, pidfile, signals) around rx.minion.core.Minion."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from rx.config import ConfigError, load_minion_config
from rx.daemonize import daemon_parser, fatal, launch, overrides, print_config_if_asked, remove_pidfile
from rx.minion.core import Minion
from rx.transport.crypto import CryptoError, use_sodium_aead

log = logging.getLogger("rx.minion")

__all__ = ["Minion", "main"]


def main(argv: list[str] | None = None) -> None:
    parser = daemon_parser("rx-minion", "Run an rx minion.")
    parser.add_argument("--id", help="minion id (default: id setting, else the host name)")
    args = parser.parse_args(argv)
    sodium = use_sodium_aead()  # before any key is used: then this process never loads cryptography (~8 MB)
    try:
        cfg = load_minion_config(args.config_dir, overrides(args, "id"))
    except ConfigError as exc:
        fatal(str(exc))
    print_config_if_asked(args, cfg)

    def prepare() -> Minion:
        if not sodium:
            log.info("AES-256-GCM from cryptography (PyNaCl's libsodium cannot do it on this host): ~8 MB more memory")
        try:
            return Minion(cfg)
        except (OSError, CryptoError) as exc:
            raise ConfigError(f"pki_dir: {cfg.pki_dir!r} is not usable: {getattr(exc, 'strerror', None) or exc}",
                              key="pki_dir") from None
    minion = launch("rx-minion", args, cfg, prepare, [cfg.pki_dir, cfg.cachedir])
    try:
        sys.exit(_run_until_signal(minion))
    finally:
        remove_pidfile(cfg.pidfile)


def _run_until_signal(minion: Minion) -> int:
    async def runner() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await minion.run()
        except asyncio.CancelledError:
            log.warning("rx-minion stopping")
        return 0
    return asyncio.run(runner())


if __name__ == "__main__":
    main()
