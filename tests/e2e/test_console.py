"""The operator console in a real browser, on the five services with the simulators.

Two Commerce7 → Vinoshipper tenants ("harbour", whose staff sign in, and "rival"); the console
runs as its own process and calls the services as `operator-console` on the signed-in member's
behalf. Each test drives headless Chromium as a member of staff would, and checks what the
services then record. The order tab, failures view and connections view are photographed into
docs/ (docs/console.md shows them).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from playwright.async_api import Page, expect

from operator_console.security import EmbedGrant, embed_token
from tests.e2e.browser import chromium
from tests.e2e.conftest import Driver, tenant, web_order
from tests.system.console import staff_operator, staff_viewer
from tests.system.journey import JourneyReader
from tests.system.stack import READER, REPO, WINE_SHIPPING, Stack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

HARBOUR, RIVAL = "harbour", "rival"
SENT, FAILED, NOT_REQUIRED = "Sent to Vinoshipper", "Failed to Send", "Not Required to Send"
SCREENSHOTS = REPO / "docs" / "images"
CHANNEL_ADMIN = "https://admin.commerce7.example"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def winery(infra, tmp_path_factory):
    """Drivers of both tenants and the running console, by name."""
    specs = {HARBOUR: tenant(HARBOUR, prefix="HARB"), RIVAL: tenant(RIVAL, prefix="RIV")}
    run_dir = tmp_path_factory.mktemp("console")
    async with Stack(
        list(specs.values()), run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap
    ) as stack:
        console = await stack.start_console(frame_ancestors=CHANNEL_ADMIN)
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses, stack.token(READER)) as reader:
            drivers = {name: Driver(stack, reader, spec.tenant_id) for name, spec in specs.items()}
            yield {"console": console, **drivers}
            for driver in drivers.values():
                await driver.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser, winery):
    """A fresh browser context (no cookies) with a page, at the console."""
    context = await browser.new_context(base_url=winery["console"].url, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    yield page
    await context.close()


async def sign_in(page: Page, winery, name: str | None = None) -> None:
    name = name or staff_operator(HARBOUR)
    await page.goto("/failures")
    await expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    await page.get_by_label("Email").fill(name)
    await page.get_by_label("Password").fill(winery["console"].password(name))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/failures$"))
    await expect(page.locator(".who .member")).to_have_text(name)


async def failed_order(driver: Driver, sku: str) -> tuple[dict, admin_pb.GetOrderResponse]:
    placed = (await driver.place(web_order(sku=sku)))["order"]
    return placed, await driver.wait_for_status(placed["orderNumber"], FAILED)


async def reload_until(page: Page, selector: str, text: str, timeout_s: float = 30.0) -> None:
    """Reload until `selector` shows `text`: the pages are plain HTML, refreshed by asking again."""
    deadline = time.monotonic() + timeout_s
    while True:
        if text in (await page.locator(selector).inner_text()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} never showed {text!r}; last: {await page.locator(selector).inner_text()}")
        await asyncio.sleep(0.5)
        await page.reload()


async def test_a_member_signs_in_opens_a_failed_order_and_retries_it_until_sent(winery, page):
    driver = winery[HARBOUR]
    placed, failed = await failed_order(driver, "SKU-ROSE")
    await sign_in(page, winery)

    await page.get_by_role("link", name=f"#{placed['orderNumber']}").click()
    await expect(page.locator(".status-title")).to_have_text(FAILED)
    await expect(page.locator(".card .reason-code")).to_have_text("UNKNOWN_SKU")
    await expect(page.locator(".what-to-do")).to_contain_text("Retry")
    await expect(page.locator(".routing-rule")).not_to_be_empty()
    void = page.locator("form[data-action=void-sync]")
    await expect(void.get_by_role("button", name="Void Sync")).to_be_disabled()
    await expect(void.locator(".why-not")).to_contain_text("only an order Sent to Vinoshipper can be voided")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "console-order-tab.png", full_page=True)

    products = driver.stack.tenants[HARBOUR].account(WINE_SHIPPING)["products"]
    await driver.stack.update_account(HARBOUR, WINE_SHIPPING, products=[*products, "SKU-ROSE"])
    retry = page.locator("form[data-action=retry]")
    await retry.get_by_label("Reason for Retry").fill("SKU-ROSE added in Vinoshipper")
    await retry.get_by_role("button", name="Retry").click()
    await expect(page.locator(".notice.done")).to_contain_text("Retry done")
    await reload_until(page, ".status-title", SENT)

    entry = page.locator(".activity-entry[data-kind=operator_retry]")
    await expect(entry.locator(".actor")).to_have_text(f"{staff_operator(HARBOUR)} via operator-console")
    await expect(entry).to_contain_text("SKU-ROSE added in Vinoshipper")
    shown = await driver.show(placed["orderNumber"])
    assert [e.actor for e in shown.activity if e.kind == "operator_retry"] == [
        f"{staff_operator(HARBOUR)} via operator-console"
    ]
    assert failed.sync.order_id == shown.sync.order_id


async def test_bulk_dont_send_keeps_three_failed_orders_in_the_channel(winery, page):
    driver = winery[HARBOUR]
    orders = [await failed_order(driver, f"SKU-GONE-{n}") for n in range(3)]
    await sign_in(page, winery)
    await page.goto("/failures?reason=UNKNOWN_SKU&window=24h")
    for placed, _ in orders:
        await page.get_by_label(f"Choose order {placed['orderNumber']}").check()
    await page.screenshot(path=SCREENSHOTS / "console-failures.png", full_page=True)

    await page.get_by_label("Reason for the chosen orders").fill("wines discontinued; refunded in Commerce7")
    await page.get_by_role("button", name="Don't Send chosen").click()
    await expect(page.locator(".bulk-summary")).to_contain_text("Finished: 3 of 3 done")
    await expect(page.locator("li.bulk-result.outcome-done")).to_have_count(3)
    await expect(page.locator("progress.bulk-progress")).to_have_attribute("value", "3")

    for placed, _ in orders:
        shown = await driver.show(placed["orderNumber"])
        assert shown.sync.status_title == NOT_REQUIRED
        dont_send = [e for e in shown.activity if e.kind == "operator_dont_send"]
        assert [(e.actor, e.message) for e in dont_send] == [
            (f"{staff_operator(HARBOUR)} via operator-console", "wines discontinued; refunded in Commerce7")
        ]


async def test_void_sync_of_a_delivered_order_is_refused_with_the_reason(winery, page):
    driver = winery[HARBOUR]
    placed = (await driver.place(web_order()))["order"]
    shown = await driver.wait_for_status(placed["orderNumber"], SENT)
    for step in ("fulfil", "ship", "deliver"):
        await driver.provider(shown.sync.provider_order_number, step)
    await driver.wait_for(placed["id"], lambda j: j.written_back == "delivered")

    await sign_in(page, winery)
    await page.goto(f"/orders/{shown.sync.order_id}")
    void = page.locator("form[data-action=void-sync]")
    await expect(void.locator(".why-not")).to_contain_text("already delivered")
    # A page loaded before the order was delivered still offers Void Sync: the service refuses it.
    await void.evaluate(
        """form => { form.querySelector('button').disabled = false;
                     const reason = document.createElement('input');
                     reason.name = 'reason'; reason.value = 'customer wants a refund'; form.append(reason); }"""
    )
    await void.get_by_role("button", name="Void Sync").click()
    refusal = page.locator(".notice.refused")
    await expect(refusal).to_contain_text("Void Sync was refused")
    await expect(refusal).to_contain_text("already delivered")
    assert not (await driver.provider_order(shown.sync.provider_order_number))["canceledAt"]


async def test_another_tenants_order_cannot_be_reached(winery, page):
    rival = winery[RIVAL]
    placed = (await rival.place(web_order()))["order"]
    theirs = await rival.wait_for_status(placed["orderNumber"], SENT)
    await sign_in(page, winery)
    csrf = await page.locator("input[name=csrf_token]").first.input_value()

    response = await page.goto(f"/orders/{theirs.sync.order_id}")
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("Not found in your account")
    # By its number, the look-up finds at most harbour's own order of that number (the two
    # stores number their orders alike), never rival's.
    response = await page.goto(f"/orders?number={placed['orderNumber']}")
    assert response is not None and theirs.sync.order_id not in page.url
    assert response.status == 404 or await page.locator("article.order").get_attribute("data-order-id") != (
        theirs.sync.order_id
    )
    # Nor by acting on it: the service narrows the console's call to the member's tenant.
    refused = await page.request.post(
        f"/orders/{theirs.sync.order_id}/actions/void-sync",
        form={"reason": "not mine", "csrf_token": csrf},
    )
    assert refused.status == 404
    assert (await rival.show(placed["orderNumber"])).sync.status_title == SENT


async def test_an_action_without_its_csrf_token_is_refused(winery, page):
    driver = winery[HARBOUR]
    placed, failed = await failed_order(driver, "SKU-CSRF")
    await sign_in(page, winery)
    action = f"/orders/{failed.sync.order_id}/actions/dont-send"

    missing = await page.request.post(action, form={"reason": "forged"})
    assert missing.status == 403
    assert "security token is missing or wrong" in await missing.text()
    other_session = winery["console"]  # a token from another sign-in is not this session's
    async with httpx.AsyncClient(base_url=other_session.url) as client:
        form = (await client.get("/sign-in")).text
        foreign = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert foreign is not None
    wrong = await page.request.post(action, form={"reason": "forged", "csrf_token": foreign.group(1)})
    assert wrong.status == 403
    assert (await driver.show(placed["orderNumber"])).sync.status_title == FAILED


async def test_the_connections_view_shows_freshness_and_unmapped_codes_with_their_fix(winery, page):
    driver = winery[HARBOUR]
    await failed_order(driver, "SKU-UNMAPPED")
    placed = (await driver.place(web_order(code="77")))["order"]
    await driver.wait_for_status(placed["orderNumber"], FAILED)
    await sign_in(page, winery)
    await page.goto("/connections")
    store = page.locator("tr[data-account=store]")
    await expect(store).to_contain_text("Commerce7")
    await expect(store).to_contain_text("orders taken in")
    await expect(store.locator("td").nth(2)).to_contain_text("UTC")
    await expect(page.locator("tr[data-account=wine-shipping]")).to_contain_text("orders sent")
    sku = page.locator("tr.unmapped li", has_text="SKU-UNMAPPED")
    await expect(sku).to_contain_text("add the product at Vinoshipper")
    await page.screenshot(path=SCREENSHOTS / "console-connections.png", full_page=True)

    code = page.locator("tr.unmapped li", has_text="shipping code 77")
    await code.get_by_role("link", name="fix the mapping").click()
    await expect(page.get_by_label("Code", exact=True)).to_have_value("77")
    await page.get_by_label("Name").fill("UPS Ground (store code 77)")
    await page.get_by_label("Carrier (ordersync id)").fill("UPS")
    await page.get_by_label("Service (ordersync id)").fill("UPS_GROUND")
    await page.get_by_role("button", name="Save mapping").click()
    await expect(page.locator(".notice.done")).to_contain_text("The mapping of 77 is saved")

    shown = await driver.show(placed["orderNumber"])
    await page.goto(f"/orders/{shown.sync.order_id}")
    retry = page.locator("form[data-action=retry]")
    await retry.get_by_label("Reason for Retry").fill("store code 77 mapped to UPS Ground")
    await retry.get_by_role("button", name="Retry").click()
    await reload_until(page, ".status-title", SENT)


async def test_a_viewer_sees_actions_disabled_and_is_refused_if_they_post(winery, page):
    driver = winery[HARBOUR]
    _, failed = await failed_order(driver, "SKU-VIEW")
    await sign_in(page, winery, staff_viewer(HARBOUR))
    await page.goto(f"/orders/{failed.sync.order_id}")
    retry = page.locator("form[data-action=retry]")
    await expect(retry.get_by_role("button", name="Retry")).to_be_disabled()
    csrf = await retry.locator("input[name=csrf_token]").input_value()
    refused = await page.request.post(
        f"/orders/{failed.sync.order_id}/actions/retry", form={"reason": "try", "csrf_token": csrf}
    )
    assert refused.status == 403
    assert "may view orders but not act" in await refused.text()


async def test_an_embedded_order_tab_is_read_only_and_framable_by_the_channel_admin_only(winery, browser):
    driver = winery[HARBOUR]
    _, failed = await failed_order(driver, "SKU-EMBED")
    order_id = failed.sync.order_id
    token = embed_token(winery["console"].embed_secret, EmbedGrant(HARBOUR, order_id))
    context = await browser.new_context(base_url=winery["console"].url)
    page = await context.new_page()
    try:
        response = await page.goto(f"/embed/orders/{order_id}?token={token}")
        assert response is not None and response.status == 200
        assert f"frame-ancestors {CHANNEL_ADMIN}" in response.headers["content-security-policy"]
        await expect(page.locator(".status-title")).to_have_text(FAILED)
        await expect(page.locator("form[data-action=retry] button")).to_be_disabled()
        await expect(page.locator(".topbar")).to_have_count(0)
        card = await page.goto(f"/embed/orders/{order_id}?token={token}&view=card")
        assert card is not None and card.status == 200
        await expect(page.locator(".card .status-title")).to_have_text(FAILED)
        await expect(page.locator(".activity")).to_have_count(0)
        other = await page.goto(f"/embed/orders/ord_someone_else?token={token}")
        assert other is not None and other.status == 401
        normal = await page.goto("/sign-in")
        assert normal is not None and "frame-ancestors 'none'" in normal.headers["content-security-policy"]
    finally:
        await context.close()


@asynccontextmanager
async def signed_in_client(winery, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client holding `name`'s session cookie, as a browser would after signing in."""
    async with httpx.AsyncClient(base_url=winery["console"].url) as client:
        form = (await client.get("/sign-in")).text
        answer = await client.post(
            "/sign-in", data={"name": name, "password": winery["console"].password(name), "csrf_token": csrf_of(form)}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/failures"
        yield client


def csrf_of(page_html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert found is not None
    return found.group(1)


async def test_each_path_answers_its_status(winery):
    """The answer code of every path a page or form can take, the happy ones included."""
    console = winery["console"]
    _, failed = await failed_order(winery[HARBOUR], "SKU-CODES")
    order = f"/orders/{failed.sync.order_id}"
    async with httpx.AsyncClient(base_url=console.url) as anonymous:
        assert (await anonymous.get("/readyz")).status_code == 200
        away = await anonymous.get(order)
        assert away.status_code == 303 and away.headers["location"].startswith("/sign-in?next=/orders/")
        form = await anonymous.get("/sign-in")
        assert form.status_code == 200
        assert form.headers["x-frame-options"] == "DENY" and form.headers["referrer-policy"] == "no-referrer"
        wrong = await anonymous.post(
            "/sign-in", data={"name": staff_operator(HARBOUR), "password": "nope", "csrf_token": csrf_of(form.text)}
        )
        assert wrong.status_code == 401 and "do not match" in wrong.text
        unsigned = await anonymous.post("/sign-in", data={"name": staff_operator(HARBOUR), "password": "x"})
        assert unsigned.status_code == 403
        assert (await anonymous.get(f"/embed/orders/{failed.sync.order_id}?token=forged")).status_code == 401

    async with signed_in_client(winery, staff_operator(HARBOUR)) as client:
        page = await client.get(order)
        assert page.status_code == 200 and FAILED in page.text
        csrf = csrf_of(page.text)
        no_reason = await client.post(f"{order}/actions/retry", data={"reason": "  ", "csrf_token": csrf})
        assert no_reason.status_code == 400 and "Retry needs a reason" in no_reason.text
        unknown = await client.post(f"{order}/actions/refund", data={"reason": "x", "csrf_token": csrf})
        assert unknown.status_code == 404
        refused = await client.post(f"{order}/actions/check-fulfillment", data={"reason": "x", "csrf_token": csrf})
        assert refused.status_code == 409 and "there is nothing to check" in refused.text
        bulk = await client.post("/failures/bulk", data={"action": "void-sync", "reason": "x", "csrf_token": csrf})
        assert bulk.status_code == 400 and "Bulk actions are Retry and Don" in bulk.text
        missing = await client.get("/orders/ord_0000")
        assert missing.status_code == 404
        done = await client.post(f"{order}/actions/dont-send", data={"reason": "kept", "csrf_token": csrf})
        assert done.status_code == 303 and done.headers["location"] == f"{order}?done=dont-send"
        assert (await client.get("/connections")).status_code == 200
        assert (await client.get("/failures?window=all")).status_code == 200
        home = await client.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/failures"
        async with signed_in_client(winery, staff_viewer(HARBOUR)) as outside:
            mapping = await outside.post(
                "/mappings",
                data={
                    "kind": "sku",
                    "code": "X",
                    "provider_sku": "Y",
                    "csrf_token": csrf_of((await outside.get("/failures")).text),
                },
            )
            assert mapping.status_code == 403
        signed_out = await client.post("/sign-out", data={"csrf_token": csrf})
        assert signed_out.status_code == 303
        assert (await client.get(order)).status_code == 303
