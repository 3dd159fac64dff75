"""Tests that start daemons run on one pytest-xdist worker, one at a time, as they were written to (free ports,
timeouts sized for a shared 2-core runner); the unit tests spread over the other workers.  `make test` runs
`pytest -n 2 --dist loadgroup`, so the unit suite runs beside the daemon suites instead of before them."""

from __future__ import annotations

from pathlib import Path

import pytest

GROUP = "daemons"


def mark_serial(items: list[pytest.Item], directory: Path) -> None:
    """Put the collected tests under `directory` in the one xdist group that runs them in sequence."""
    for item in items:
        if Path(item.path).is_relative_to(directory):
            item.add_marker(pytest.mark.xdist_group(GROUP))
