"""Creates ordersync's Kafka topics from deploy/topics.txt; a script and an importable helper."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

DEFAULT_TOPIC_FILE = Path(__file__).resolve().parent.parent / "topics.txt"


@dataclass(frozen=True)
class TopicSpec:
    """TopicSpec: one line of the topic file: name, partition count and topic configs."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def read_topic_file(path: str | Path = DEFAULT_TOPIC_FILE) -> list[TopicSpec]:
    """Parse a topic file: `name partitions [key=value ...]` per line, `#` starts a comment.

    Raises ValueError naming the file and line for a malformed line.
    """
    specs = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        try:
            name, partitions, *pairs = words
            configs = dict(pair.split("=", 1) for pair in pairs)
            specs.append(TopicSpec(name, int(partitions), configs))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: expected 'name partitions [key=value ...]': {raw!r}") from exc
    return specs


async def create_topics(bootstrap: str, topics: list[TopicSpec], prefix: str = "", replication_factor: int = 1) -> None:
    """Create `prefix + name` for each spec (one replica unless told), then wait for leaders.

    Topics that already exist are left as they are (their partitions and configs are not
    compared), so calling this twice is harmless. Raises the broker's KafkaError for any other
    failure, and TimeoutError if some partition still has no leader after 30 s: waiting here
    means a producer started right after this call does not meet LEADER_NOT_AVAILABLE.
    """
    await _create(bootstrap, topics, prefix, replication_factor)


async def _create(
    bootstrap: str, topics: list[TopicSpec], prefix: str, replication_factor: int = 1, leader_timeout: float = 30.0
) -> list[str]:
    """Does create_topics' work; returns the names this call created (for the script's report)."""
    names = [prefix + spec.name for spec in topics]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(prefix + s.name, s.partitions, replication_factor, topic_configs=dict(s.configs)) for s in topics]
        )
        created = []
        for name, code, *rest in response.topic_errors:
            error = for_code(code) if code else None
            if error is None:
                created.append(name)
            elif error is not TopicAlreadyExistsError:
                message = rest[0] if rest and rest[0] else error.__name__
                raise error(f"cannot create topic {name}: {message}")
        try:
            async with asyncio.timeout(leader_timeout):
                await _wait_for_leaders(admin, names)
        except TimeoutError:
            raise TimeoutError(f"topics without a partition leader after {leader_timeout:.0f} s: {names}") from None
        return created
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    while True:
        described = await admin.describe_topics(names)
        if all(
            topic["error_code"] == 0 and topic["partitions"] and all(p["leader"] >= 0 for p in topic["partitions"])
            for topic in described
        ):
            return
        await asyncio.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap address, HOST:PORT")
    parser.add_argument("--prefix", default="", help="prepended to every topic name (per-test topics)")
    parser.add_argument("--file", default=str(DEFAULT_TOPIC_FILE), help="topic file (default: deploy/topics.txt)")
    parser.add_argument(
        "--replication-factor", type=int, default=1, help="replicas of each new topic (1: a one-broker cluster)"
    )
    args = parser.parse_args(argv)

    specs = read_topic_file(args.file)
    try:
        created = asyncio.run(_create(args.bootstrap, specs, args.prefix, args.replication_factor))
    except (KafkaError, TimeoutError) as exc:
        print(f"create_topics: {exc}", file=sys.stderr)
        return 1
    for spec in specs:
        name = args.prefix + spec.name
        state = "created" if name in created else "exists"
        print(f"create_topics: {state:7} {name} ({spec.partitions} partitions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
