"""Commerce7's samples for the contract suite: a store account and the vendor's webhook sample."""

from libs.connectors.base.testing import ContractSamples, vendor_bytes
from libs.connectors.commerce7.tests.builders import AUTHORIZATION, TENANT

SAMPLES = ContractSamples(
    account={
        "connector": "commerce7",
        "tenant_slug": TENANT,
        "app_id": "ordersync-app",
        "app_secret": "env:C7_CONTRACT_APP_SECRET",
        "webhook_user": "ordersync-app",
        "webhook_password": "env:C7_CONTRACT_WEBHOOK_PASSWORD",
    },
    secrets={"C7_CONTRACT_APP_SECRET": "app-secret-value", "C7_CONTRACT_WEBHOOK_PASSWORD": "s3cret-value"},
    push_bodies=(vendor_bytes("commerce7", "webhook_order_create_web_ship.json"),),
    push_headers={"Authorization": AUTHORIZATION},
)
