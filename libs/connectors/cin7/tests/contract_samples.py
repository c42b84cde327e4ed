"""Cin7's samples for the contract suite: an API connection account (a pulled channel: no pushes)."""

from libs.connectors.base.testing import ContractSamples

SAMPLES = ContractSamples(
    account={
        "connector": "cin7",
        "username": "harbour-api",
        "api_key": "env:CIN7_CONTRACT_API_KEY",
        "fully_picked_stage": "Ready to Ship",
    },
    secrets={"CIN7_CONTRACT_API_KEY": "k3y-value-contract"},
)
