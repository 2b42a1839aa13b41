"""The object store on Amazon S3 (``s3://bucket[/prefix]``).

Keys are the same relative keys the local store takes, below an optional
prefix. Files travel through boto3's transfer manager, so a file above
``TransferConfig.multipart_threshold`` is uploaded in parts (and downloaded
in ranges) in parallel. The compare-and-swap pointer uses S3 conditional
writes: ``PutObject`` with ``If-Match: <etag>`` replaces the object only if
it still has that ETag, with ``If-None-Match: *`` only if it does not exist;
a failed condition is HTTP 412 ``PreconditionFailed`` (AWS S3 user guide,
"Add preconditions to S3 operations with conditional requests").

Every boto3 and botocore error is translated in :meth:`S3ObjectStore._errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from journal.errors import ObjectNotFound, ObjectStoreError
from journal.objectstore import (
    CasOutcome,
    ObjectInfo,
    ObjectStore,
    Versioned,
    check_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = structlog.get_logger(__name__)

#: Error codes meaning "no such object" (``HeadObject`` has no body, so it
#: reports the bare status code).
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
#: A failed precondition, or a concurrent conditional write to the same key
#: (409 ``ConditionalRequestConflict``): either way this writer did not win.
_CONDITION_FAILED = frozenset(
    {"PreconditionFailed", "412", "ConditionalRequestConflict"}
)


class _ConditionFailed(ObjectStoreError):
    """A conditional write found another object version (internal)."""


def default_transfer_config() -> TransferConfig:
    """Multipart above 16 MiB in 16 MiB parts, 8 parts in flight.

    Parts of 16 MiB keep a 400 MB index under 30 parts (S3 allows 10,000);
    S3 requires parts of at least 5 MiB except the last.
    """
    mib = 1024 * 1024
    return TransferConfig(
        multipart_threshold=16 * mib, multipart_chunksize=16 * mib, max_concurrency=8
    )


class S3ObjectStore(ObjectStore):
    """Objects in an S3 bucket, under ``prefix`` when one is given.

    ``transfer`` tunes multipart transfers; ``list_page_size`` is the keys
    per ``ListObjectsV2`` call (S3 returns at most 1000).
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "",
        transfer: TransferConfig | None = None,
        list_page_size: int = 1000,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = check_key(prefix.strip("/")) if prefix.strip("/") else ""
        self._transfer = transfer or default_transfer_config()
        self._list_page_size = list_page_size
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    # -- blobs ----------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (one ``PutObject``)."""
        full = self._full(key)
        with self._errors(key):
            self._client.put_object(Bucket=self.bucket, Key=full, Body=data)

    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file, in parts when it is large."""
        full = self._full(key)
        with self._errors(key):
            self._client.upload_file(
                str(path), self.bucket, full, Config=self._transfer
            )

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; :class:`ObjectNotFound` when absent."""
        full = self._full(key)
        with self._errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=full)
            return response["Body"].read()

    def get_file(self, key: str, dest: Path) -> None:
        """Download to ``dest``; the transfer manager writes a temporary file
        beside it and renames it, so ``dest`` is never half written."""
        full = self._full(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._errors(key):
            self._client.download_file(
                self.bucket, full, str(dest), Config=self._transfer
            )

    def exists(self, key: str) -> bool:
        """True when an object is stored under ``key``."""
        full = self._full(key)
        try:
            with self._errors(key):
                self._client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix``, sorted by key."""
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[ObjectInfo] = []
        with self._errors(prefix):
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=base + prefix,
                PaginationConfig={"PageSize": self._list_page_size},
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(base) :]
                    found.append(ObjectInfo(key=key, size=item["Size"]))
        return sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> None:
        """Remove the object; S3 reports success for an absent key too."""
        full = self._full(key)
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    # -- compare and swap -----------------------------------------------------

    def read_versioned(self, key: str) -> Versioned | None:
        """The object and its S3 ETag, None when absent."""
        full = self._full(key)
        try:
            with self._errors(key):
                response = self._client.get_object(Bucket=self.bucket, Key=full)
                data = response["Body"].read()
        except ObjectNotFound:
            return None
        return Versioned(data=data, etag=response["ETag"])

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> CasOutcome:
        """Write only if the object still has ``etag`` (None: only if absent).

        S3 decides atomically: of writers holding the same ETag, one wins.
        An ``If-Match`` on an absent object fails with ``NoSuchKey``, which is
        a lost race too (the object was deleted since it was read).
        """
        full = self._full(key)
        try:
            with self._errors(key):
                if etag is None:
                    self._client.put_object(
                        Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*"
                    )
                else:
                    self._client.put_object(
                        Bucket=self.bucket, Key=full, Body=data, IfMatch=etag
                    )
        except (_ConditionFailed, ObjectNotFound):
            log.debug("put_if_conflict", url=self.url, key=key, expected=etag)
            return CasOutcome.CONFLICT
        return CasOutcome.WRITTEN

    # -- helpers --------------------------------------------------------------

    def _full(self, key: str) -> str:
        """The S3 key for ``key``, refusing unsafe keys."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """The one place where boto3 and botocore errors become store errors."""
        try:
            yield
        except ClientError as error:
            details = error.response.get("Error", {})
            code = str(details.get("Code", ""))
            if code in _NOT_FOUND:
                raise ObjectNotFound(key) from error
            if code in _CONDITION_FAILED:
                raise _ConditionFailed(f"{self.url}: {key!r}: {code}") from error
            message = details.get("Message", str(error))
            raise ObjectStoreError(
                f"object store {self.url}: {key!r}: {code}: {message}"
            ) from error
        except (BotoCoreError, Boto3Error) as error:
            raise ObjectStoreError(
                f"object store {self.url}: {key!r}: {error}"
            ) from error
