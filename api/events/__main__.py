"""`python -m rx.api.events --markdown`: print docs/api-events.md."""

from __future__ import annotations

import argparse

from rx.api.events.docs import markdown


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m rx.api.events", description=__doc__)
    p.add_argument("--markdown", action="store_true", help="print the event stream's reference (docs/api-events.md)")
    a = p.parse_args(argv)
    if not a.markdown:
        p.error("nothing to do: give --markdown")
    print(markdown(), end="")


if __name__ == "__main__":
    main()
