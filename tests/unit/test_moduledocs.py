"""docs/modules.md is generated from the modules' docstrings (rx.minion.moduledocs) and kept current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rx.minion.builtins import BUILTINS
from rx.minion.moduledocs import markdown
from rx.modules import MODULES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "modules.md"


def test_docs_modules_md_is_up_to_date():
    assert DOCS.read_text() == markdown(), "docs/modules.md is out of date: run `make docs`"


def test_every_module_file_and_builtin_is_documented():
    text = markdown()
    for name in set(MODULES.values()) | {fun.split(".")[0] for fun in BUILTINS}:
        assert f"\n## `{name}`" in text, name
    for fun in BUILTINS:
        assert f"\n### `{fun}(" in text and "host" not in text.split(f"### `{fun}(")[1].split(")")[0], fun
    assert "### `test.echo(text: str) -> str`" in text
    assert "(also callable as `saltutil`)" in text


def test_the_generator_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "rx.minion.moduledocs", "--markdown"], capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout == markdown()
