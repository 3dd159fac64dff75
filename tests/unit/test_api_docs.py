"""docs/api.md is generated from rx-api's route table and allow-lists and must be current."""

from __future__ import annotations

from pathlib import Path

from rx.api.app import ROUTES
from rx.api.docs import reference_markdown
from rx.api.wheel import WHEEL
from rx.apiconfig import API_CLIENTS


def test_docs_api_md_is_up_to_date():
    docs = Path(__file__).resolve().parents[2] / "docs" / "api.md"
    assert docs.read_text() == reference_markdown(), "docs/api.md is out of date: run `make docs`"


def test_every_route_client_and_wheel_function_is_in_the_reference():
    text = reference_markdown()
    for route in ROUTES:
        assert f"| `{route.path}` |" in text, route.path
    for client in API_CLIENTS:
        assert f"| `{client}` |" in text, client
    for fun in WHEEL:
        assert f"### `{fun}(" in text, fun
