"""Fan-out of mapping changes to WatchChanges streams, each with its own bounded queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from carrier_mapping.domain.translate import GLOBAL_TENANT

# A watcher this far behind is cut off rather than buffered without bound; its client
# reconnects and drops its whole cache, which is always correct.
MAX_PENDING = 1_000


@dataclass(frozen=True)
class Change:
    """Mappings of `tenant_id` changed in `version`; GLOBAL_TENANT means the defaults changed."""

    version: int
    tenant_id: str


class Subscription:
    """One watcher: the tenants it watches (None = all) and its queue. Iterate to receive
    changes; iteration ends when the feed closes or the watcher falls too far behind."""

    def __init__(self, tenants: frozenset[str] | None):
        self.tenants = tenants
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue(MAX_PENDING)

    def offer(self, change: Change) -> bool:
        """Queue `change` if watched; return False when the queue is full (watcher cut off)."""
        wanted = self.tenants is None or change.tenant_id == GLOBAL_TENANT or change.tenant_id in self.tenants
        if not wanted:
            return True
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            return False
        return True

    def end(self) -> None:
        # Make room if needed: the end marker must get through.
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __aiter__(self):
        return self

    async def __anext__(self) -> Change:
        change = await self._queue.get()
        if change is None:
            raise StopAsyncIteration
        return change


class ChangeFeed:
    """Publishes changes to every subscription; closing it ends them all."""

    def __init__(self):
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    def subscribe(self, tenants: frozenset[str] | None) -> Subscription:
        """A new subscription to `tenants` (None = all); unsubscribe() it when done."""
        subscription = Subscription(tenants)
        if self._closed:
            subscription.end()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, version: int, tenant_id: str) -> None:
        change = Change(version, tenant_id)
        for subscription in list(self._subscriptions):
            if not subscription.offer(change):
                self._subscriptions.discard(subscription)
                subscription.end()

    def close(self) -> None:
        """End every subscription, and any made later; safe twice."""
        self._closed = True
        subscriptions, self._subscriptions = self._subscriptions, set()
        for subscription in subscriptions:
            subscription.end()

    def __len__(self) -> int:
        return len(self._subscriptions)
