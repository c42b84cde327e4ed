"""ShipStation's samples for the contract suite: an account, the vendor's SHIP_NOTIFY and ShipNotice
samples, and the Custom Store's Basic credentials."""

import base64

from libs.connectors.base.testing import ContractSamples, vendor_bytes
from libs.connectors.shipstation.tests.builders import valid_order

SAMPLES = ContractSamples(
    account={
        "connector": "shipstation",
        "api_key": "ss-key",
        "api_secret": "env:SS_CONTRACT_API_SECRET",
        "webhook_token": "env:SS_CONTRACT_WEBHOOK_TOKEN",
        "store_user": "shipstation",
        "store_password": "env:SS_CONTRACT_STORE_PASSWORD",
        "status_awaiting_shipment": "Fully Picked",
    },
    secrets={
        "SS_CONTRACT_API_SECRET": "ss-secret-value",
        "SS_CONTRACT_WEBHOOK_TOKEN": "path-token-value",
        "SS_CONTRACT_STORE_PASSWORD": "store-password-value",
    },
    notice_bodies=(vendor_bytes("shipstation", "webhook_ship_notify.json"),),
    notice_path_tail="path-token-value",
    order=valid_order(),
    # ShipStation calls the Custom Store with the store user and password as HTTP Basic.
    pull_headers={"Authorization": "Basic " + base64.b64encode(b"shipstation:store-password-value").decode()},
    pull_export=(
        "GET",
        {"action": "export", "start_date": "05/01/2024 00:00", "end_date": "05/02/2024 00:00", "page": "2"},
    ),
    posted_shipments=(vendor_bytes("shipstation", "shipnotice.xml"),),
)
