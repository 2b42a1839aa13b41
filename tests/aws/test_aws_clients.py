"""The client factory: botocore's retry configuration, not hand-made retries."""

from __future__ import annotations

import pytest

from journal.aws_clients import DEFAULT_MAX_ATTEMPTS, make_client


def test_clients_retry_with_the_standard_mode_by_default() -> None:
    client = make_client("dynamodb", region="eu-west-1")

    retries = client.meta.config.retries

    assert retries == {
        "mode": "standard",
        "total_max_attempts": DEFAULT_MAX_ATTEMPTS + 1,  # retries + the first
    }
    assert client.meta.region_name == "eu-west-1"


@pytest.mark.parametrize("service", ["dynamodb", "kinesis", "s3"])
def test_the_retry_mode_and_endpoint_can_be_chosen(service: str) -> None:
    client = make_client(
        service,
        region="us-east-1",
        endpoint_url="http://127.0.0.1:5000",
        retry_mode="adaptive",
        max_attempts=3,
    )

    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"
