"""Draining: how `actorflow serve` tells every replica to stop taking dispatches, and learns
when they have finished the ones in flight.

Serve has no call that reaches every replica, so the server makes a small actor, the switch,
and hands it to the replicas. Each replica waits on `wait()`; on SIGTERM the server calls
`start()`, every replica at once answers new requests with 503 JSON (`Retry-After`) and
`/v1/health` with 503, finishes its requests in flight, stops its runner and reports `done()`.
The server waits for `all_done()` and only then removes the application, so the route is
never missing while clients are being served.
"""

from __future__ import annotations

import asyncio

import ray

__all__ = ["DrainSwitch"]


@ray.remote(num_cpus=0, max_restarts=0)
class DrainSwitch:
    """Async actor: one per served application."""

    def __init__(self) -> None:
        self._started = asyncio.Event()
        self._replicas: set[str] = set()
        self._done: set[str] = set()
        self._changed = asyncio.Event()

    async def join(self, replica: str) -> None:
        """A replica counts from its start: the drain waits for it."""
        self._replicas.add(replica)
        self._changed.set()

    async def wait(self) -> None:
        """Returns when draining starts."""
        await self._started.wait()

    async def start(self) -> int:
        """Start draining; returns the number of replicas that will report."""
        self._started.set()
        return len(self._replicas)

    async def done(self, replica: str) -> None:
        """A replica finished its requests in flight and stopped its runner."""
        self._done.add(replica)
        self._changed.set()

    async def all_done(self) -> list[str]:
        """Returns once every replica that joined has reported; the replicas, sorted."""
        while not self._replicas <= self._done:
            self._changed.clear()
            await self._changed.wait()
        return sorted(self._done)
