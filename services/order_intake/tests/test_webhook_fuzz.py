"""Fuzzing intake's Commerce7 endpoint over real HTTP on real Postgres: never a 5xx, nothing unkept.

With the database up, any authenticated body (raw bytes, JSON trees, bodies nested far too
deep, mutations of a real order webhook carrying hostile text and numbers, new revisions of a
few orders with mutated content) is answered 2xx or 4xx in JSON, and the answer names the
receipt that keeps the body. An exception escaping the handler would be a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from libs.connectors.base.tests.fuzzing import FUZZ, bodies, encode, mutations, typed_mutations
from order_intake.domain.intake import InputLimits
from services.order_intake.tests.endpoint import Endpoint, serve, webhook
from tests.databases import fresh_database

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.integration,
    pytest.mark.timeout(120),
]

LIMIT = 16 * 1024
OUTCOMES = {"accepted", "invalid", "ignored", "duplicate", "stale", "unchanged", "malformed", "too_large"}
SAMPLE = webhook()


def revision_of(body, order_id: str, updated_at: datetime):
    # A mutation that left the payload an object is made a revision of one of a few orders, so
    # new, newer, older and repeated revisions all reach storage.
    if isinstance(body.get("payload"), dict):
        body["payload"] |= {"id": order_id, "updatedAt": updated_at.isoformat()}
    return body


revisions = st.builds(
    revision_of,
    st.one_of(typed_mutations(SAMPLE, within=("payload",)), mutations(SAMPLE, within=("payload",))),
    st.sampled_from(["o-1", "o-2", "o-3"]),
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2024, 1, 2), timezones=st.just(UTC)),
).map(encode)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def endpoint(infra) -> AsyncIterator[Endpoint]:
    async with fresh_database(infra.pg_dsn) as dsn, serve(dsn, InputLimits(max_body_bytes=LIMIT)) as served:
        yield served


@FUZZ
@given(body=st.one_of(bodies(SAMPLE, within=("payload",)), revisions, revisions))
async def test_any_authenticated_body_is_answered_without_a_5xx_and_kept(endpoint, body: bytes) -> None:
    response = await endpoint.post(body)
    assert response.status_code < 500, response.text
    answer = response.json()
    assert ("status" in answer) != ("error" in answer)
    kept = await endpoint.receipt(answer["receipt_id"])
    assert kept["body"] == body[:LIMIT]
    assert kept["outcome"] in OUTCOMES
    if "error" in answer:
        assert kept["detail"] == answer["message"]
