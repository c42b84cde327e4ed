"""The look-up cache on its own: answers naming nobody expire sooner, errors are never kept, the
cache can be turned off, and an answer read before an invalidation is not stored after it."""

import asyncio

import pytest

from fulfillment_dispatch.directory.cache import DirectoryCache

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Directory:
    """Counts calls; answers what `answer` holds, or raises it."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_answers_naming_nobody_expire_before_those_naming_somebody():
    clock = Clock()
    cache = DirectoryCache(ttl_s=300, negative_ttl_s=30, timer=clock)
    somebody, nobody = Directory(["ana"]), Directory([])
    for _ in range(2):
        await cache.get(("acme", "ana"), somebody)
        await cache.get(("acme", "lee"), nobody)

    clock.now = 31
    await cache.get(("acme", "ana"), somebody)
    await cache.get(("acme", "lee"), nobody)

    assert (somebody.calls, nobody.calls) == (1, 2)
    assert (cache.stats.hits, cache.stats.misses) == (3, 3)


async def test_an_error_is_not_kept():
    cache = DirectoryCache()
    directory = Directory(RuntimeError("down"))

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get(("acme", "ana"), directory)

    assert directory.calls == 2 and len(cache) == 0


async def test_a_ttl_of_zero_turns_the_cache_off():
    cache = DirectoryCache(ttl_s=0)
    directory = Directory(["ana"])

    for _ in range(3):
        assert await cache.get(("acme", "ana"), directory) == ["ana"]

    assert directory.calls == 3


async def test_an_answer_read_before_an_invalidation_is_not_stored_after_it():
    cache = DirectoryCache()
    release = asyncio.Event()

    async def slow():
        await release.wait()
        return []  # read before the member was added

    before = asyncio.ensure_future(cache.get(("acme", "lee"), slow))
    await asyncio.sleep(0)
    cache.invalidate("acme")  # the member is added now
    release.set()

    assert await before == []
    assert await cache.get(("acme", "lee"), Directory(["lee"])) == ["lee"]


async def test_invalidating_one_tenant_keeps_the_others_answers():
    cache = DirectoryCache()
    await cache.get(("acme", "ana"), Directory(["ana"]))
    await cache.get(("globex", "ana"), Directory(["ana"]))

    cache.invalidate("acme")

    globex = Directory(["other"])
    assert await cache.get(("globex", "ana"), globex) == ["ana"] and globex.calls == 0
    assert len(cache) == 1
