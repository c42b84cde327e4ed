"""Mintsoft's samples for the contract suite: an account with callbacks, the despatch callback."""

from libs.connectors.base.testing import ContractSamples, vendor_bytes
from libs.connectors.mintsoft.tests.builders import valid_order

SAMPLES = ContractSamples(
    account={
        "connector": "mintsoft",
        "username": "ms-user",
        "password": "env:MS_CONTRACT_PASSWORD",
        "client_id": 12,
        "order_number_prefix": "GR-",
        "callback_base_url": "https://hub.example.test",
        "callback_token": "env:MS_CONTRACT_CALLBACK_TOKEN",
    },
    secrets={"MS_CONTRACT_PASSWORD": "ms-password-value", "MS_CONTRACT_CALLBACK_TOKEN": "callback-token-value"},
    notice_bodies=(vendor_bytes("mintsoft", "order_despatched.json"),),
    notice_path_tail="callback-token-value",
    order=valid_order(),
)
