"""Fuzzing dispatch's Vinoshipper endpoint over real HTTP, reading back from the Vinoshipper simulator,
on real Postgres: never a 5xx, and every body that is not ignored is kept.

With the database and Vinoshipper up, any body on the secret URL (raw bytes, JSON trees, bodies
nested far too deep, mutations of a real webhook carrying hostile text, identifiers and hrefV3
links) is answered 2xx or 4xx in JSON. An exception escaping the handler would be a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from fulfillment_dispatch.api.webhooks import MAX_BODY_BYTES
from fulfillment_dispatch.storage.dispatches import NewDispatch, enqueue
from libs.connectors.base.tests.fuzzing import FUZZ, bodies, encode, hostile_text
from services.fulfillment_dispatch.tests.endpoint import (
    SENT,
    STRANGER,
    TENANT,
    Endpoint,
    place_at_vinoshipper,
    serve,
    webhook,
)

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.integration,
    pytest.mark.timeout(120),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def endpoint(infra) -> AsyncIterator[Endpoint]:
    async with serve(infra.pg_dsn) as served:
        await place_at_vinoshipper(served.sim, SENT, STRANGER)
        await served.sim_step(SENT, "fulfil")
        async with served.pool.acquire() as conn:
            row = NewDispatch("ord-1", TENANT, "vinoshipper", SENT, b"", "commerce7", "c7-1", "1001", "")
            await enqueue(conn, [row])
        yield served


# Bodies are mutations of a webhook about an order that is fulfilled at the simulator, so the
# read-back answers, and hostile values reach the read-back, the recorder and the receipt. The
# simulator's address is known only once it runs, so the sample names a placeholder host.
PLACEHOLDER = "http://vinoshipper.invalid"
ORDERS = f"{PLACEHOLDER}/api/v3/p/orders/"


def usually(plain, hostile=hostile_text):
    """Two times in three a plain value, else a hostile one."""
    return st.one_of(plain, plain, hostile)


# Webhooks whose every field is plausible or hostile, so most get past parsing to the read-back:
# hostile text ends up in hrefV3's path, in the identifier compared with what was read back, in
# the event kept with the receipt.
plausible = st.fixed_dictionaries(
    {
        "identifier": usually(st.sampled_from([SENT, STRANGER, "ACME-404"])),
        "subject": usually(st.sampled_from(["ORDER", "order", "PRODUCT"])),
        "event": usually(st.sampled_from(["UPDATED", "CREATED", "CANCELLED", "TRACKING_NUMBER_ADDED"])),
        "hrefV3": usually(st.sampled_from([ORDERS + SENT, ORDERS + STRANGER]), hostile_text.map(ORDERS.__add__)),
    }
).map(encode)


@FUZZ
@given(body=st.one_of(bodies(webhook(PLACEHOLDER, SENT, "UPDATED")), plausible, plausible))
async def test_any_body_on_the_secret_url_is_answered_without_a_5xx(endpoint, body: bytes) -> None:
    body = body.replace(PLACEHOLDER.encode(), endpoint.sim.encode())
    before = await endpoint.pool.fetchval("SELECT count(*) FROM provider_webhooks")
    response = await endpoint.post(body)
    assert response.status_code < 500, response.text
    answer = response.json()
    assert ("status" in answer) != ("error" in answer)
    if "receipt_id" in answer:
        kept = await endpoint.pool.fetchrow(
            "SELECT body, detail FROM provider_webhooks WHERE id = $1", answer["receipt_id"]
        )
        assert kept["body"] == body[:MAX_BODY_BYTES]
        if "error" in answer:
            assert kept["detail"] == answer["message"]
    else:
        # Only created/approved events go unkept: they cannot move a shipment.
        assert (response.status_code, answer) == (202, {"status": "ignored"})
        assert await endpoint.pool.fetchval("SELECT count(*) FROM provider_webhooks") == before
