"""DynamoDB lease behaviour beyond the shared lease contract (moto).

Time is an injected clock; nothing sleeps.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from journal.aws_schema import LEASE_PARTITION_KEY, LEASE_TTL_ATTRIBUTE
from pipeline.lease_dynamodb import (
    DynamoDBLease,
    LeaseStoreUnavailable,
    create_lease_table,
)
from tests.aws.moto_backends import LEASE_TABLE, MotoAws
from tests.aws.support import CallLog, Interposer, ManualClock

TTL = timedelta(seconds=30)


@pytest.fixture
def lease(aws: MotoAws, clock: ManualClock) -> DynamoDBLease:
    create_lease_table(aws.dynamodb, LEASE_TABLE)
    return DynamoDBLease(aws.dynamodb, LEASE_TABLE, clock=clock)


def lease_item(aws: MotoAws, collection: str = "lines") -> dict[str, Any]:
    return aws.dynamodb.get_item(
        TableName=LEASE_TABLE, Key={LEASE_PARTITION_KEY: {"S": collection}}
    ).get("Item", {})


def test_a_former_owners_heartbeat_after_takeover_fails_and_extends_nothing(
    lease: DynamoDBLease, clock: ManualClock
) -> None:
    old = lease.acquire("lines", "consumer-a", TTL)
    assert old is not None
    clock.advance(31)  # consumer-a was paused past its expiry
    new = lease.acquire("lines", "consumer-b", TTL)
    assert new is not None
    clock.advance(5)

    heartbeat = lease.renew(old, timedelta(minutes=10))

    assert heartbeat is None
    assert new.token > old.token
    assert lease.current("lines") == new
    assert lease.current("lines").expires_at == new.expires_at  # type: ignore[union-attr]
    clock.advance(26)  # just past the new owner's expiry
    assert lease.current("lines") is None


def test_expiry_is_stored_for_conditions_for_people_and_for_ttl(
    aws: MotoAws, lease: DynamoDBLease, clock: ManualClock
) -> None:
    grant = lease.acquire("lines", "a", timedelta(seconds=30.5))
    assert grant is not None

    item = lease_item(aws)

    assert item["owner"] == {"S": "a"}
    assert int(item["token"]["N"]) == grant.token
    assert item["expires_at"] == {"S": grant.expires_at.isoformat()}
    epoch = grant.expires_at.timestamp()
    assert int(item[LEASE_TTL_ATTRIBUTE]["N"]) == math.ceil(epoch)
    ttl = aws.dynamodb.describe_time_to_live(TableName=LEASE_TABLE)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == LEASE_TTL_ATTRIBUTE
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_tokens_keep_growing_after_ttl_deleted_an_expired_lease(
    aws: MotoAws, lease: DynamoDBLease, clock: ManualClock
) -> None:
    first = lease.acquire("lines", "a", TTL)
    assert first is not None
    clock.advance(3600)
    # DynamoDB's TTL removes the expired lease item some time later.
    aws.dynamodb.delete_item(
        TableName=LEASE_TABLE, Key={LEASE_PARTITION_KEY: {"S": "lines"}}
    )

    second = lease.acquire("lines", "b", TTL)

    assert second is not None and second.token > first.token


def test_an_acquirer_that_loses_the_fence_race_tries_again(
    aws: MotoAws, lease: DynamoDBLease, clock: ManualClock
) -> None:
    proxy = Interposer(aws.dynamodb)
    racing = DynamoDBLease(proxy, LEASE_TABLE, clock=clock)  # type: ignore[arg-type]

    def rival_acquires_and_releases_first(real: Any, **kwargs: Any) -> Any:
        proxy.around.pop("transact_write_items")
        rival = lease.acquire("lines", "rival", TTL)
        assert rival is not None and lease.release(rival)
        return real(**kwargs)

    proxy.around["transact_write_items"] = rival_acquires_and_releases_first
    grant = racing.acquire("lines", "a", TTL)

    assert grant is not None
    assert grant.token == 2  # the rival had token 1
    assert lease.current("lines") == grant


def test_an_acquirer_that_loses_to_a_new_holder_is_refused(
    aws: MotoAws, lease: DynamoDBLease, clock: ManualClock
) -> None:
    proxy = Interposer(aws.dynamodb)
    racing = DynamoDBLease(proxy, LEASE_TABLE, clock=clock)  # type: ignore[arg-type]

    def rival_acquires_first(real: Any, **kwargs: Any) -> Any:
        lease.acquire("lines", "rival", TTL)
        return real(**kwargs)

    proxy.around["transact_write_items"] = rival_acquires_first

    assert racing.acquire("lines", "a", TTL) is None
    assert lease.current("lines").owner == "rival"  # type: ignore[union-attr]


def test_current_reads_strongly_consistently(
    aws: MotoAws, lease: DynamoDBLease, calls: CallLog
) -> None:
    lease.current("lines")

    ((name, params),) = calls.calls
    assert (name, params["ConsistentRead"]) == ("GetItem", True)


def test_an_unreachable_table_is_reported_as_a_lease_store_error(
    aws: MotoAws, clock: ManualClock
) -> None:
    missing = DynamoDBLease(aws.dynamodb, "no-such-table", clock=clock)

    with pytest.raises(LeaseStoreUnavailable, match="no-such-table"):
        missing.acquire("lines", "a", TTL)
