"""Fixtures for the AWS backends, all on moto (see ``moto_backends.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from journal.dynamodb import DynamoDBJournal
from tests.aws.moto_backends import JOURNAL_TABLE, MotoAws, moto_aws
from tests.aws.support import CallLog, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> MotoAws:
    """moto for this test, with the journal table created."""
    return moto_aws(request)


@pytest.fixture
def calls(aws: MotoAws) -> Iterator[CallLog]:
    """Records the API calls of the moto clients from now on."""
    log = CallLog()
    log.attach(aws.dynamodb)
    log.attach(aws.kinesis)
    yield log
    log.detach(aws.dynamodb)
    log.detach(aws.kinesis)


@pytest.fixture
def journal(aws: MotoAws, clock: ManualClock) -> DynamoDBJournal:
    return DynamoDBJournal(aws.dynamodb, JOURNAL_TABLE, clock=clock)
