"""CellarPass's samples for the contract suite: an account with its API key (a pulled channel: no pushes)."""

from libs.connectors.base.testing import ContractSamples

SAMPLES = ContractSamples(
    account={
        "connector": "cellarpass",
        "base_url": "https://cellarpass.example/api",
        "api_key": "env:CELLARPASS_CONTRACT_API_KEY",
        "page_size": 25,
    },
    secrets={"CELLARPASS_CONTRACT_API_KEY": "cp-key-contract-value"},
)
