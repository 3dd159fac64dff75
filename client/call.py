"""`rx-call --local FUN [ARG ...]`: run an execution module function on this
host, without a master (for checking a module or a host by hand)."""

from __future__ import annotations

import argparse
import sys

from rx import __version__
from rx.client.cli import ALLOW_CONTROL_HELP, split_args
from rx.client.output import OUTPUTTERS, render, use_color


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="rx-call", description="Run a function on this host.")
    p.add_argument("--local", action="store_true", help="run without a master (the only mode for now)")
    p.add_argument("-c", "--config-dir", help="minion config directory, for static grains "
                                               "(default: $RX_CONFIG_DIR or /etc/rx; optional)")
    p.add_argument("--id", default="local", help="minion id to report (default: local)")
    p.add_argument("--out", choices=OUTPUTTERS, default="nested")
    p.add_argument("--allow-control-chars", action="store_true", help=ALLOW_CONTROL_HELP)
    p.add_argument("--version", action="version", version=f"rx-call {__version__}")
    p.add_argument("fun")
    p.add_argument("args", nargs=argparse.REMAINDER)
    opts = p.parse_args(argv)
    if not opts.local:
        p.error("only --local is supported: rx-call runs the function on this host without a master")
    from rx.config import ConfigError, MinionConfig, load_minion_config
    from rx.minion.executor import call_one
    from rx.minion.grains import load_grains
    from rx.minion.registry import Registry
    from rx.modules import ExecContext
    try:
        cfg: MinionConfig | None = load_minion_config(opts.config_dir, {"id": opts.id})
    except ConfigError as exc:
        print(f"rx-call: warning: static grains not loaded: {exc}", file=sys.stderr)
        cfg = None
    registry = Registry(cfg)
    ctx = ExecContext(minion_id=opts.id, grains=load_grains(opts.id, cfg), config=cfg,
                      registry=registry)
    registry.context = ctx
    args, kwargs = split_args(opts.args)
    value, retcode = call_one(registry, opts.fun, args, kwargs, ctx)
    print(render(opts.out, {opts.id: value}, color=use_color(sys.stdout), escape=not opts.allow_control_chars))
    sys.exit(0 if retcode == 0 else 1)


if __name__ == "__main__":
    main()
