"""The background writer: records leave the request path through a bounded queue, written in batches.

``submit()`` only appends to an in-memory queue: no I/O, no waiting. A background task writes what is
queued every ``flush_interval`` seconds, or as soon as ``batch_size`` records wait, one transaction per
batch. When the database is reachable but slower than the requests (a saturated process: the writer
shares the event loop with them), the queue passes its high-water mark and callers of
:meth:`RecordWriter.room` wait until it is back under it, so requests slow to the pace at which they can
be recorded instead of records being lost. When the database is unreachable, records stay queued,
nobody waits, and the writer retries with exponential backoff; when the queue is then full, the oldest
waiting record is dropped to make room, and every drop is counted in :meth:`RecordWriter.stats` and
logged.

A record the database refuses (a constraint or type error, details that are not JSON) cannot succeed
on retry: the batch is split, the good records are written and the bad ones are counted as
``rejected``. Shutdown (:meth:`RecordWriter.aclose`, or SIGTERM through
:meth:`RecordWriter.install_sigterm`) writes everything it can before returning.

Call ``submit()`` from the event loop's thread (the server's handlers and the Orchestrator do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from podium.errors import ConfigError
from podium.storage import audit
from podium.storage.api_keys import touch_keys
from podium.storage.conversations import insert_messages
from podium.storage.db import Database
from podium.storage.records import (
    AuditRecord,
    ConversationMessageRecord,
    KeyUsage,
    PerformanceSample,
    Record,
    RequestRecord,
)
from podium.storage.repositories import insert_requests, insert_samples

logger = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.1


class WriterStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the writer did so far.

    Attributes:
        queued: Records waiting to be written (including a batch being written).
        written: Records written.
        dropped: Records lost because the queue was full (the oldest go first), or still queued when
            shutdown gave up on an unreachable database, or submitted after shutdown began.
        rejected: Records the database refused (they could never be written).
        failed_flushes: Batch writes that failed and were retried.
        last_error: The last write error, if any (no record contents).
    """

    queued: int
    written: int
    dropped: int
    rejected: int
    failed_flushes: int
    last_error: str | None


class RecordWriter:
    """Writes records to the database in batches, off the request path.

    Args:
        db: The database (migrated).
        max_queue: Most records held in memory; beyond it the oldest waiting ones are dropped.
        batch_size: Most records per transaction.
        flush_interval: Seconds between writes while fewer than ``batch_size`` records wait.
        max_backoff: Longest wait, in seconds, between retries while the database is unreachable.

    Raises:
        ConfigError: a size or interval is not positive, or ``batch_size`` exceeds ``max_queue``.
    """

    def __init__(
        self,
        db: Database,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0 or max_backoff <= 0:
            raise ConfigError(
                "RecordWriter: max_queue, batch_size, flush_interval and max_backoff must be > 0"
            )
        if batch_size > max_queue:
            raise ConfigError(
                f"RecordWriter: batch_size ({batch_size}) cannot exceed max_queue ({max_queue})"
            )
        self.db = db
        self._max_queue = max_queue
        # Half the queue: room to absorb a burst, and the other half for an outage's first seconds.
        self._high_water = max(batch_size, max_queue // 2)
        self._failing = False
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_backoff = max_backoff
        self._queue: deque[Record] = deque()
        self._inflight = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._signal_task: asyncio.Task[None] | None = None
        self._written = self._dropped = self._rejected = self._failed = 0
        self._overflowed = self._reported_overflow = 0
        self._last_error: str | None = None

    @property
    def closed(self) -> bool:
        """Whether shutdown has begun (new records are refused)."""
        return self._closed

    def start(self) -> None:
        """Start the background task on the running loop (``submit`` does it on first use)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="podium-record-writer")

    def submit(self, record: Record) -> bool:
        """Queue a record for writing; never blocks and does no I/O.

        Returns:
            True when queued without loss; False when the queue was full (the oldest waiting record
            was dropped to make room for this one) or shutdown has begun (this record was dropped).
        """
        if self._closed:
            self._dropped += 1
            return False
        accepted = True
        if len(self._queue) + self._inflight >= self._max_queue:
            accepted = False
            self._dropped += 1
            self._overflowed += 1
            if not self._queue:
                # Every slot holds the batch being written; that batch may already be committed.
                return False
            self._queue.popleft()
        self._queue.append(record)
        if self._task is None:
            # Without a running loop yet, records wait for start() or aclose().
            with contextlib.suppress(RuntimeError):
                self.start()
        if len(self._queue) >= self._batch_size:
            self._wake.set()
        return accepted

    def behind(self) -> bool:
        """Whether the queue is past its high-water mark while the database is reachable.

        The request path checks this (a comparison, no I/O) and awaits :meth:`room` when it is True.
        """
        if self._failing or self._closed:
            return False
        return len(self._queue) + self._inflight >= self._high_water

    async def room(self, timeout: float = 10.0) -> None:
        """Wait until the queue is back under its high-water mark, or ``timeout`` seconds.

        Under a load the database cannot keep up with, callers slow down to its pace instead of
        records being dropped. Never while the database is unreachable: the gateway then keeps
        serving, and records queue (the oldest dropped once the queue is full).
        """
        if not self.behind():
            return
        self._wake.set()  # write now, not at the next interval
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._progress:
                await self._progress.wait_for(lambda: not self.behind())

    def stats(self) -> WriterStats:
        """Counts of queued, written, dropped and rejected records, failed flushes, and the last error."""
        return WriterStats(
            queued=len(self._queue) + self._inflight,
            written=self._written,
            dropped=self._dropped,
            rejected=self._rejected,
            failed_flushes=self._failed,
            last_error=self._last_error,
        )

    async def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued now; returns False if ``timeout`` seconds passed first."""
        if self._queue and self._task is None:
            self.start()

        async def drained() -> None:
            async with self._progress:
                while self._queue or self._inflight:
                    self._wake.set()
                    await self._progress.wait()

        try:
            await asyncio.wait_for(drained(), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float = 10.0) -> WriterStats:
        """Stop accepting records, write the queued ones, and stop the background task.

        Args:
            timeout: Seconds to keep trying while the database is unreachable; records still queued
                after it are counted as dropped and logged.
        """
        self._closed = True
        self._wake.set()
        if self._task is None and self._queue:
            self.start()
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=timeout)
            if pending:
                self._task.cancel()
                await asyncio.wait({self._task})
        if self._queue:
            lost = len(self._queue)
            self._dropped += lost
            self._queue.clear()
            logger.error(
                "record writer: %d records lost at shutdown, the database at %s stayed unreachable (%s)",
                lost,
                self.db.display_url,
                self._last_error,
            )
        self._report_drops()
        return self.stats()

    def install_sigterm(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        timeout: float = 10.0,
        on_closed: Callable[[], object] | None = None,
    ) -> None:
        """On SIGTERM, drain the queue before the process ends (Unix).

        By default the process then terminates by SIGTERM as it would have without the handler. Pass
        ``on_closed`` to continue instead (e.g. to let a server finish its own shutdown). A server that
        handles signals itself (uvicorn) should instead ``await writer.aclose()`` in its shutdown hook.

        Args:
            loop: The loop the writer runs on (default: the running loop).
            timeout: Passed to :meth:`aclose`.
            on_closed: Called once the queue is drained, instead of re-raising SIGTERM.
        """
        loop = loop or asyncio.get_running_loop()

        async def close_then_exit() -> None:
            await self.aclose(timeout)
            if on_closed is not None:
                on_closed()
                return
            loop.remove_signal_handler(signal.SIGTERM)  # restores the default action: terminate
            os.kill(os.getpid(), signal.SIGTERM)

        def on_sigterm() -> None:
            if self._signal_task is None:
                self._closed = True
                self._signal_task = loop.create_task(close_then_exit(), name="podium-writer-sigterm")

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)

    async def __aenter__(self) -> RecordWriter:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        failures = 0
        while True:
            if failures:
                delay = min(self._max_backoff, _FIRST_BACKOFF * 2 ** (failures - 1))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter: replicas do not retry in step
            elif len(self._queue) < self._batch_size and not self._closed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._report_drops()
            while self._queue:
                # Consume the signal that started this write: only one raised during it (another full
                # batch, a flush, shutdown) may chain the next write without waiting for the interval.
                self._wake.clear()
                ok = await self._write_next_batch()
                self._failing = not ok
                async with self._progress:
                    self._progress.notify_all()
                if not ok:
                    failures += 1
                    break
                if failures:
                    logger.info("record writer: database reachable again at %s", self.db.display_url)
                failures = 0
                if len(self._queue) < self._batch_size and not self._closed and not self._wake.is_set():
                    # What arrived during the write waits for the next interval (or a full batch, or a
                    # flush): under load this keeps transactions few and large, each costing the same.
                    break
            else:
                if self._closed:
                    return

    async def _write_next_batch(self) -> bool:
        batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
        self._inflight = len(batch)
        try:
            try:
                refused = await self._write(batch)
            except Exception as exc:
                if not _is_bad_data(exc):
                    raise
                return await self._write_one_by_one(batch)
            self._written += len(batch) - refused
            return True
        except asyncio.CancelledError:
            self._queue.extendleft(reversed(batch))
            raise
        except Exception as exc:
            self._requeue_after_failure(batch, exc)
            return False
        finally:
            self._inflight = 0

    async def _write_one_by_one(self, batch: list[Record]) -> bool:
        # Isolates the records the database refuses; the rest of the batch is still written.
        for i, record in enumerate(batch):
            try:
                refused = await self._write([record])
            except Exception as exc:
                if not _is_bad_data(exc):
                    self._requeue_after_failure(batch[i:], exc)
                    return False
                self._rejected += 1
                self._last_error = _describe(exc)
                logger.error(
                    "record writer: the database refused a %s: %s", type(record).__name__, self._last_error
                )
            else:
                self._written += 1 - refused
        return True

    def _requeue_after_failure(self, batch: Sequence[Record], exc: BaseException) -> None:
        self._queue.extendleft(reversed(batch))
        self._failed += 1
        first = self._last_error is None or self._failed == 1
        self._last_error = _describe(exc)
        log = logger.warning if first else logger.debug
        log(
            "record writer: write to %s failed, %d records wait: %s",
            self.db.display_url,
            len(self._queue),
            self._last_error,
        )

    async def _write(self, batch: Sequence[Record]) -> int:
        """Write one batch in one transaction; returns how many records were refused (and counts them)."""
        requests = [r for r in batch if isinstance(r, RequestRecord)]
        samples = [r for r in batch if isinstance(r, PerformanceSample)]
        messages = [r for r in batch if isinstance(r, ConversationMessageRecord)]
        usages = [r for r in batch if isinstance(r, KeyUsage)]
        audit_rows = [audit.prepare(r) for r in batch if isinstance(r, AuditRecord)]
        async with self.db.transaction(write=bool(audit_rows)) as conn:
            await insert_requests(conn, requests)
            await insert_samples(conn, samples)
            refused = await insert_messages(conn, messages)
            await touch_keys(conn, usages)
            await audit.append(conn, audit_rows, returning=False)
        if refused:
            self._rejected += len(refused)
            logger.error(
                "record writer: %d conversation messages refused: their conversation belongs to another user",
                len(refused),
            )
        return len(refused)

    def _report_drops(self) -> None:
        if self._overflowed > self._reported_overflow:
            logger.warning(
                "record writer: %d records dropped because the queue was full (max %d); %d in total",
                self._overflowed - self._reported_overflow,
                self._max_queue,
                self._overflowed,
            )
            self._reported_overflow = self._overflowed


def _is_bad_data(exc: BaseException) -> bool:
    """Whether retrying cannot help: the records themselves are at fault, not the database's state."""
    if isinstance(exc, IntegrityError | DataError | TypeError | ValueError):
        return True
    # A value the driver could not even send (not JSON-serialisable) fails before reaching the database.
    return (
        isinstance(exc, StatementError)
        and not isinstance(exc, DBAPIError)
        and isinstance(exc.orig, TypeError | ValueError)
    )


def _describe(exc: BaseException) -> str:
    # The class and the first line only: database messages can quote values, and records may carry
    # request bodies that must not end up in logs.
    text: Any = getattr(exc, "orig", None) or exc
    first_line = str(text).splitlines()[0] if str(text) else ""
    return f"{type(exc).__name__}: {first_line[:200]}"
