"""The largest record batch each Kafka topic accepts, as the outbox relay needs it before publishing.

The broker refuses a record batch over the topic's `max.message.bytes` (the broker's
`message.max.bytes` unless the topic overrides it), and aiokafka's idempotent producer cannot
publish to that partition again afterwards (OutOfOrderSequenceNumber). So the relay asks first:
`TopicLimits` describes the topics' configs with the admin client, keeps the answer for
`refresh_s`, and asks again sooner after a publishing failure (a limit may have been lowered).
When the broker cannot be asked (down, or no DescribeConfigs permission) topics have no known
limit and only the producer's own check (max_request_size) applies; that is logged as an outage,
not per batch.

`record_size` is what a record costs in a batch: aiokafka's own upper bound (the one the producer
checks against max_request_size), which counts a whole batch header for each record. A lone
record's batch is never larger, and summing it over records bounds any batch of them, so no
further margin is needed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from libs.platform.outage import OutageLog

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = "max.message.bytes"
# How long a topic's limit is trusted: an operator lowering it is noticed within this.
REFRESH_S = 60.0
# Bounds one describe, so an unreachable broker delays a batch by seconds, not by aiokafka's 40 s.
DESCRIBE_TIMEOUT_S = 10.0


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """An upper bound of the bytes `key`, `value` and `headers` add to a record batch (see above)."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)


class TopicLimits:
    """Each topic's max.message.bytes, asked from the broker and kept for `refresh_s`."""

    def __init__(
        self,
        bootstrap: str,
        *,
        fields: dict | None = None,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._bootstrap = bootstrap
        self._refresh_s = refresh_s
        self._clock = clock
        self._limits: dict[str, int] = {}
        self._asked: set[str] = set()
        self._asked_at = -math.inf
        self._outage = OutageLog(log, "topic limits lookup", fields=fields)

    def limit(self, topic: str) -> int | None:
        """The topic's max.message.bytes as last described, or None when it is not known."""
        return self._limits.get(topic)

    def expire(self) -> None:
        """Ask again before the next batch (call after a publishing failure)."""
        self._asked_at = -math.inf

    async def refresh(self, topics: Iterable[str]) -> None:
        """Describe `topics` (and those known already) if any is new or the answer is stale.

        Never raises: a failed lookup keeps the previous answer, is logged as an outage, and is
        tried again after `refresh_s` or the next expire().
        """
        wanted = self._asked | set(topics)
        if wanted <= self._asked and self._clock() - self._asked_at < self._refresh_s:
            return
        self._asked, self._asked_at = wanted, self._clock()
        try:
            async with asyncio.timeout(DESCRIBE_TIMEOUT_S):
                self._limits = await self._describe(sorted(wanted))
        except Exception as exc:  # noqa: BLE001 - without limits the producer's own check still applies
            self._outage.failed(exc)
            return
        self._outage.recovered()

    async def _describe(self, topics: list[str]) -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t, {MAX_MESSAGE_BYTES: None}) for t in topics]
            )
        finally:
            await admin.close()
        limits = {}
        for response in responses:
            for error_code, _message, _type, topic, entries, *_ in response.resources:
                # A topic that does not exist (yet) has no limit: the producer's error says why.
                for name, value, *_ in entries if error_code == 0 else ():
                    if name == MAX_MESSAGE_BYTES:
                        limits[topic] = int(value)
        return limits
