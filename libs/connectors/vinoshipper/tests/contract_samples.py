"""Vinoshipper's samples for the contract suite: a producer account and the vendor's webhook sample."""

from libs.connectors.base.testing import ContractSamples, vendor_bytes
from libs.connectors.vinoshipper.tests.builders import valid_order

SAMPLES = ContractSamples(
    account={
        "connector": "vinoshipper",
        "api_key": "vs-key",
        "api_secret": "env:VS_CONTRACT_API_SECRET",
        "order_number_prefix": "C7-napa",
        "webhook_token": "env:VS_CONTRACT_WEBHOOK_TOKEN",
    },
    secrets={"VS_CONTRACT_API_SECRET": "vs-secret-value", "VS_CONTRACT_WEBHOOK_TOKEN": "path-token-value"},
    notice_bodies=(vendor_bytes("vinoshipper", "webhook_order_tracking_number_added.json"),),
    notice_path_tail="path-token-value",
    order=valid_order(),
)
