"""VinSuite's samples for the contract suite: a winery account with its partner login."""

from libs.connectors.base.testing import ContractSamples
from libs.connectors.vinsuite.tests.builders import valid_order

SAMPLES = ContractSamples(
    account={
        "connector": "vinsuite",
        "winery_id": "4471",
        "base_url": "https://ws-uat.ewinerysolutions.com/2.00/",
        "username": "env:VS_CONTRACT_USERNAME",
        "password": "env:VS_CONTRACT_PASSWORD",
        "order_number_prefix": "CP-",
        "order_date": "event",
        "pickup_date": "booked",
    },
    secrets={"VS_CONTRACT_USERNAME": "vs-partner-login", "VS_CONTRACT_PASSWORD": "vs-password-value"},
    order=valid_order(),
)
