"""Groupon's samples for the contract suite: a supplier account (a pulled channel: no pushes)."""

from libs.connectors.base.testing import ContractSamples

SAMPLES = ContractSamples(
    account={
        "connector": "groupon",
        "supplier_id": "48213",
        "token": "env:GROUPON_CONTRACT_TOKEN",
        "mark_exported": True,
    },
    secrets={"GROUPON_CONTRACT_TOKEN": "ci-token-contract-value"},
)
