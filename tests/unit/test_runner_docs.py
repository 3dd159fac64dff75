"""docs/runners.md is generated from the runners' docstrings and must be current."""

from __future__ import annotations

from pathlib import Path

from rx.client.runnerdocs import reference_markdown


def test_docs_runners_md_is_up_to_date():
    docs = Path(__file__).resolve().parents[2] / "docs" / "runners.md"
    assert docs.read_text() == reference_markdown(), "docs/runners.md is out of date: run `make docs`"


def test_every_runner_is_in_the_reference():
    text = reference_markdown()
    for fun in ("manage.up", "manage.down", "manage.present", "manage.versions", "event.send", "event.watch",
                "state.event", "jobs.lookup_jid"):
        assert f"### `{fun}(" in text, fun
