"""Valid objects for the CellarPass tests: settings, a client on a recorder, one reservation."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from libs.connectors.base.http import RetryPolicy
from libs.connectors.base.testing import json_response, load_vendor_json
from libs.connectors.cellarpass.client import CellarPassClient
from libs.connectors.cellarpass.settings import CellarPassSettings

API_KEY = "cp-secret-key"


def settings(**changes: Any) -> CellarPassSettings:
    return CellarPassSettings(**({"base_url": "https://cp.example/api", "api_key": API_KEY} | changes))


async def _no_sleep(_: float) -> None:
    return None


def client(transport: httpx.AsyncBaseTransport, **changes: Any) -> CellarPassClient:
    """A client on `transport` that retries twice more without sleeping."""
    return CellarPassClient(
        settings(**changes), transport=transport, retry=RetryPolicy(max_attempts=3), sleep=_no_sleep
    )


def reservation(index: int = 0, **changes: Any) -> dict[str, Any]:
    """A reservation of the vendor sample page (0: paid, 1: complimentary, 2: balance due)."""
    base = copy.deepcopy(load_vendor_json("cellarpass", "list_reservations_page.json")["reservations"][index])
    return base | changes


def page_answer(*reservations: dict[str, Any], page: int = 1, page_size: int = 50, total: int | None = None):
    body = {
        "page": page,
        "pageSize": page_size,
        "total": len(reservations) if total is None else total,
        "reservations": list(reservations),
    }
    return json_response(200, body)
