"""Rolling batches and subsets: run a job on a bounded number of the matched minions at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Sequence

from rx.client.results import NOT_STARTED, BadRequest, Missing, Published

if TYPE_CHECKING:
    from rx.client.local import AsyncLocalClient


@dataclass
class BatchProgress:
    total: int
    done: int = 0
    running: int = 0
    failed: int = 0


def narrow(tgt: str | list, tgt_type: str, ids: list[str]) -> str:
    """The target restricted to `ids` (see targeting.narrowed); BadRequest when it cannot be written."""
    from rx.targeting import TargetError, narrowed  # only batches and subsets need the parser: `rx` starts faster
    odd = [i for i in ids if any(c in i for c in ",()") or any(c.isspace() for c in i)]
    if odd:
        raise BadRequest(f"minion id {odd[0]!r} cannot be addressed in a batch or subset (it holds ',', '(', ')' "
                         "or white space)")
    try:
        return narrowed(tgt, tgt_type, ids)
    except TargetError as exc:
        raise BadRequest(str(exc)) from None


def batch_size(spec: str | int, matched: int) -> int:
    """`N` or `N%` of the matched minions, at least 1; BadRequest for anything else."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            if not 0 < pct <= 100:
                raise ValueError
            return max(1, int(matched * pct / 100))
        n = int(text)
        if n < 1:
            raise ValueError
        return n
    except ValueError:
        raise BadRequest(f"batch size {spec!r} must be a whole number >= 1 or a percentage like 25%") from None


async def run_batch(client: "AsyncLocalClient", tgt: str | list, fun: str | list, arg: Sequence, *,
                    batch: str | int, tgt_type: str, kwarg: dict | None, timeout: float | None, batch_wait: float,
                    failhard: bool, delimiter: str, gather_job_timeout: float,
                    progress: Callable[[BatchProgress], None] | None,
                    published: list[Published] | None, max_wait: float | None = None,
                    private: bool = False, job_expire: float | None = None) -> AsyncIterator[dict]:
    """See AsyncLocalClient.cmd_batch."""
    matched = (await client.preview(tgt, tgt_type=tgt_type, delimiter=delimiter)).minions
    size = batch_size(batch, len(matched))
    narrow(tgt, tgt_type, matched)  # every minion can be addressed, or nothing starts
    queue: asyncio.Queue = asyncio.Queue()
    todo = list(matched)
    state = BatchProgress(total=len(matched))

    async def run_one(minion_id: str) -> None:
        try:
            async for item in client.cmd_iter(narrow(tgt, tgt_type, [minion_id]), fun, arg, timeout=timeout,
                                              tgt_type="compound", kwarg=kwarg, delimiter=delimiter,
                                              gather_job_timeout=gather_job_timeout, expect_minions=True,
                                              published=published, max_wait=max_wait, private=private,
                                              job_expire=job_expire):
                await queue.put(item)
        except Exception as exc:  # the batch stops and says why, instead of silently skipping a minion
            await queue.put(exc)
        finally:
            await queue.put(None)

    tasks: set[asyncio.Task] = set()
    try:
        while todo or state.running:
            while todo and state.running < size and not (failhard and state.failed):
                tasks.add(asyncio.create_task(run_one(todo.pop(0))))
                state.running += 1
            if progress:
                progress(state)
            if not state.running:
                break
            item: Any = await queue.get()
            if isinstance(item, Exception):
                raise item
            if item is None:
                state.running -= 1
                state.done += 1
                if batch_wait > 0 and todo:
                    await asyncio.sleep(batch_wait)
                continue
            for r in item.values():
                if r.get("failed") or r.get("retcode") != 0:
                    state.failed += 1
            yield item
    finally:
        for t in tasks:
            t.cancel()
    for minion_id in todo:
        yield {minion_id: Missing(minion_id, NOT_STARTED).as_return()}
    if progress:
        progress(state)
