"""docs/runners.md, generated from the built-in runners' signatures and docstrings:
`python -m rx.client.runnerdocs --markdown > docs/runners.md` (`make docs`)."""

from __future__ import annotations

import sys

from rx.client.runnerload import RunnerRegistry

_INTRO = """\
# rx runners reference

<!-- Generated from the docstrings in runners/*.py by `make docs`
     (python -m rx.client.runnerdocs --markdown > docs/runners.md); edit those, not this file.
     tests/unit/test_runner_docs.py fails when this file is out of date. -->

Runners run on the master host, as the master's user: `rx-run FUN [ARG ...] [key=value ...]`, or
`RunnerClient().cmd(FUN, arg, kwarg)` from Python. `rx-run -d [PATTERN]` prints the same text, with the
custom runners of this master (`rx.runners` entry points, `<cachedir>/extmods/runners`, `_runners` in the
file roots) too.
"""


def reference_markdown() -> str:
    registry = RunnerRegistry(None, entry_points=False)
    docs = registry.doc("*")
    parts = [_INTRO]
    for module in sorted({fun.split(".")[0] for fun in docs}):
        mod_doc = (registry.module(module).__doc__ or "").strip()
        parts.append(f"## {module}\n\n{mod_doc}\n")
        for fun in sorted(f for f in docs if f.split(".")[0] == module):
            signature, _, body = docs[fun].partition("\n\n")
            parts.append(f"### `{signature}`\n\n{body.strip()}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m rx.client.runnerdocs --markdown")
    sys.stdout.write(reference_markdown())
