"""An event sink for handler tests that call a worker's handlers directly: it records the tags fired, in order
(the bus itself, with real sockets, is tested in tests/integration)."""

from __future__ import annotations

from typing import Sequence


class RecordingBus:
    def __init__(self) -> None:
        self.fired: list[str] = []

    async def fire(self, tag: str, data: dict) -> None:
        self.fired.append(tag)

    async def fire_many(self, events: Sequence[tuple[str, dict]]) -> None:
        self.fired.extend(tag for tag, _data in events)

    async def send(self, frame: bytes, topic: bytes) -> None:
        """As a publisher's frame sink: nothing is published in these tests."""

    def close(self) -> None:
        pass
