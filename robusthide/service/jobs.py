"""The concurrent-jobs limit and the per-request timeout.

A job (decode, mark or read, encode) runs on a thread pool with one thread per slot. A request that finds
every slot taken gets 503 at once (no queue: the client retries, a load balancer tries another instance).
A request whose job runs past the timeout gets 504; the job cannot be stopped mid-way, so it finishes in
the background and keeps its slot until then, and the service never runs more than ``max_jobs`` jobs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from robusthide.service.settings import Busy, TimedOut


class Jobs:
    """At most ``max_jobs`` jobs at a time, each awaited at most ``timeout_s`` seconds."""

    def __init__(self, max_jobs: int, timeout_s: float):
        self.max_jobs, self.timeout_s = max_jobs, timeout_s
        self._pool = ThreadPoolExecutor(max_jobs, thread_name_prefix="robusthide-job")
        self._lock = threading.Lock()
        self._running = 0

    @property
    def running(self) -> int:
        """Jobs running now (including those whose request already timed out)."""
        return self._running

    def _release(self, _future: Any) -> None:
        with self._lock:
            self._running -= 1

    def check(self) -> None:
        """:class:`Busy` when every slot is taken (checked again by :meth:`run`; this one spares an upload)."""
        if self._running >= self.max_jobs:
            raise Busy(f"busy: {self._running} jobs running (limit {self.max_jobs}); retry later")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on a free slot; :class:`Busy` when none is free, :class:`TimedOut` past the timeout."""
        with self._lock:
            self.check()
            self._running += 1
        try:
            future = self._pool.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.timeout_s)
        except asyncio.TimeoutError:
            raise TimedOut(f"the request took longer than the limit of {self.timeout_s:g} s") from None

    def shutdown(self) -> None:
        """Stop taking jobs; those running finish on their threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
