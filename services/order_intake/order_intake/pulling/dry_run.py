"""Sync now, as a dry run: what a poll of one pulled account would do with each record, doing nothing.

The pages after the account's committed cursor are fetched as a poll fetches them, each record's
revision is built as a poll builds it (`scheduler.page_revisions`) and the writer's own statements
judge them in a transaction that is rolled back (`RevisionWriter.preview`), so the answer is what
the next poll would record: nothing is committed, the cursor does not move, nothing is published,
acknowledged or reported. At most `max_pages` pages are fetched; the answer says when more were left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from libs.connectors.base.contract import ChannelConnector, Ignored, ParsedOrder
from libs.connectors.registry import Registry
from libs.platform.accounts import OpenAccount
from order_intake.domain.intake import RuleFailure
from order_intake.pulling.scheduler import page_revisions
from order_intake.revisions import RevisionBuilder
from order_intake.storage import pulls
from order_intake.storage.orders import Recorded, Revision, RevisionWriter
from order_intake.storage.pulls import AccountKey

MAX_PAGES = 20

# The writer's outcome -> what the dry run calls it.
_ACTIONS = {
    "accepted": "would_send",
    "not_imported": "not_imported",
    "invalid": "invalid",
    "malformed": "invalid",
    "too_large": "invalid",
    "unchanged": "unchanged",
    "duplicate": "unchanged",
    "stale": "unchanged",
    "kept_accepted": "unchanged",
    "locked_after_sync": "locked",
    "ignored": "ignored",
}
_DETAILS = {
    "duplicate": "already recorded",
    "unchanged": "already recorded; this revision changes nothing ordersync sends",
    "stale": "an older revision than the one recorded",
}


@dataclass(frozen=True)
class DryRunRecord:
    """What a sync would do with one record: would_send | not_imported | invalid | unchanged |
    locked | ignored, with the detail an operator reads."""

    external_id: str
    external_number: str
    action: str
    detail: str = ""
    rule_failures: tuple[RuleFailure, ...] = ()


@dataclass
class DryRunReport:
    records: list[DryRunRecord] = field(default_factory=list)
    pages: int = 0
    stopped_early: bool = False  # the page limit was reached with more to fetch
    held: bool = False  # a poll would stop at a page holding orders for the import delay


async def dry_run(
    pool,
    opened: OpenAccount,
    registry: Registry,
    builder: RevisionBuilder,
    writer: RevisionWriter,
    *,
    max_pages: int = MAX_PAGES,
) -> DryRunReport:
    """List what a poll of `opened` would do now; raises the connector's error when the channel
    does not answer (nothing was changed either way)."""
    key = AccountKey(opened.tenant_id, opened.account.name)
    connector: ChannelConnector = opened.connector
    cursor = await pulls.committed_cursor(pool, key) or ""
    report = DryRunReport()
    while report.pages < max_pages:
        page = await connector.fetch_page(opened.client, opened.settings, cursor, key.tenant_id)
        report.pages += 1
        revisions, taken, held_for = page_revisions(builder, registry, key, opened.account, connector, page)
        recorded = await writer.preview(revisions)
        report.records += _describe(page.orders, revisions, recorded, taken, opened.account.import_delay_s)
        if held_for is not None:
            report.held = True  # the poll would stop here, the cursor kept before this page
            return report
        if not page.more:
            return report
        cursor = page.next_cursor
    report.stopped_early = True
    return report


def _describe(
    items: Sequence[ParsedOrder | Ignored],
    revisions: list[Revision],
    recorded: list[Recorded],
    taken: dict[int, ParsedOrder],
    delay_s: float,
) -> list[DryRunRecord]:
    """One record per item, in the page's order; an order with no revision was held by the delay."""
    with_revision = {id(parsed) for parsed in taken.values()}
    described, index = [], 0
    for item in items:
        if isinstance(item, ParsedOrder) and id(item) not in with_revision:
            order = item.order
            reason = f"placed less than the account's import delay ({delay_s:g} s) ago: taken by a later poll"
            described.append(DryRunRecord(order.external_id, order.external_number, "ignored", reason))
            continue
        revision, outcome = revisions[index], recorded[index].outcome
        index += 1
        external_id = revision.external_id or (item.order.external_id if isinstance(item, ParsedOrder) else "")
        number = revision.external_number or (item.order.external_number if isinstance(item, ParsedOrder) else "")
        detail = _DETAILS.get(outcome, revision.detail)
        if outcome == "kept_accepted":
            detail = f"accepted already; this newer revision fails an import rule and is kept aside: {detail}"
        failures = revision.rule_failures if outcome == "not_imported" else ()
        described.append(DryRunRecord(external_id, number, _ACTIONS.get(outcome, "invalid"), detail, failures))
    return described
