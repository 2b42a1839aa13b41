"""Building boto3 clients from settings, in one place.

Throttling and transient errors (``ProvisionedThroughputExceededException``,
``ThrottlingException``, 5xx, connection resets) are retried by botocore's
own retry handler, configured here, never by hand in the adapters. The
adapters only retry what botocore cannot know is safe to retry: a lost
append race, failed entries of a ``PutRecords`` call.

See the AWS SDK retry documentation ("Retry behavior", standard and
adaptive modes): standard retries with exponential backoff and a retry
quota; adaptive adds client-side rate limiting on throttling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_s3 import S3Client

RetryMode = Literal["standard", "adaptive"]

#: Retries after the first attempt (botocore's ``max_attempts``; it reports
#: ``total_max_attempts`` = this + 1). The standard mode's default of 2 gives
#: up quickly under sustained throttling.
DEFAULT_MAX_ATTEMPTS = 8


def client_config(
    *, retry_mode: RetryMode = "standard", max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> Config:
    """The botocore configuration every client of this project uses."""
    return Config(retries={"mode": retry_mode, "max_attempts": max_attempts})


@overload
def make_client(
    service: Literal["dynamodb"],
    *,
    region: str,
    endpoint_url: str | None = None,
    retry_mode: RetryMode = "standard",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    session: boto3.session.Session | None = None,
) -> DynamoDBClient: ...


@overload
def make_client(
    service: Literal["kinesis"],
    *,
    region: str,
    endpoint_url: str | None = None,
    retry_mode: RetryMode = "standard",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    session: boto3.session.Session | None = None,
) -> KinesisClient: ...


@overload
def make_client(
    service: Literal["s3"],
    *,
    region: str,
    endpoint_url: str | None = None,
    retry_mode: RetryMode = "standard",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    session: boto3.session.Session | None = None,
) -> S3Client: ...


@overload
def make_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None = None,
    retry_mode: RetryMode = "standard",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    session: boto3.session.Session | None = None,
) -> Any: ...


def make_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None = None,
    retry_mode: RetryMode = "standard",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    session: boto3.session.Session | None = None,
) -> Any:
    """A boto3 client for ``service`` with the project's retry configuration.

    ``endpoint_url`` overrides the AWS endpoint (a local moto server in
    tests, a VPC endpoint in production); None uses the regional default.
    A new session is made unless one is given (sessions are not safe to
    share between threads; clients are).
    """
    # The boto3 stubs type ``client`` per literal service name; this
    # factory serves any name, with the typed overloads above.
    build: Any = (session or boto3.session.Session()).client
    return build(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=client_config(retry_mode=retry_mode, max_attempts=max_attempts),
    )
