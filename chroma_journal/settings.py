"""Configuration, read once at an entry point into one typed object.

Environment variable names are the field names in upper case; they are
defined here and nowhere else. Names the previous system used keep their
meaning: ``CHROMA_ROOT``, ``CHROMADB_BUCKET``, ``DYNAMODB_TABLE_NAME``.
Backends are chosen by URL (DESIGN section 10)::

    JOURNAL_URL       sqlite:///./var/journal.sqlite3 | dynamodb://TABLE
    OBJECT_STORE_URL  file://./var/objects            | s3://BUCKET
    LEASE_URL         file://./var/leases             | dynamodb://TABLE
    STATUS_URL        sqlite:///./var/status.sqlite3  | dynamodb://TABLE
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of chroma-journal, with the embedded defaults."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=False, frozen=True
    )

    # Where things live.
    journal_url: str = "sqlite:///./var/journal.sqlite3"
    object_store_url: str = "file://./var/objects"
    chromadb_bucket: str | None = Field(
        default=None,
        description="previous system's bucket variable; sets s3://BUCKET",
    )
    lease_url: str = "file://./var/leases"
    status_url: str = "sqlite:///./var/status.sqlite3"
    chroma_root: Path = Path("./var/chroma")
    staging_root: Path = Path("./var/staging")

    # AWS.
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    kinesis_stream_name: str | None = None
    dynamodb_table_name: str | None = Field(
        default=None, description="the receipts table the stream adapter reads"
    )

    # Consumer behaviour.
    group_commit_max_events: int = Field(default=500, ge=1)
    group_commit_max_records: int = Field(default=20_000, ge=1)
    group_commit_max_seconds: float = Field(default=0.2, ge=0)
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    apply_attempts: int = Field(default=3, ge=1)
    lease_ttl_seconds: float = Field(default=60.0, gt=0)
    versions_keep: int = Field(default=5, ge=1)
    versions_grace_seconds: float = Field(default=300.0, ge=0)
    hnsw_space: Literal["cosine", "l2", "ip"] = "cosine"

    # Deltas and snapshots.
    max_delta_bytes: int = Field(default=4 * 1024**3, ge=1)
    max_delta_members: int = Field(default=10_000, ge=1)
    snapshot_keep: int = Field(default=5, ge=1)
    snapshot_grace_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="an unfinished snapshot younger than this is never removed",
    )

    # The KCL consumer (see docs/kcl.md).
    kcl_application_name: str = Field(
        default="chroma-journal-consumer",
        description="KCL application name; also KCL's lease table",
    )
    kcl_executable: str = Field(
        default="chroma-journal kcl-processor",
        description="command the daemon starts per shard (split on spaces)",
    )
    kcl_retrieval_mode: Literal["POLLING", "FANOUT"] = "POLLING"
    kcl_metrics_level: Literal["NONE", "SUMMARY", "DETAILED"] = "SUMMARY"
    kcl_initial_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    kcl_shutdown_grace_millis: int = Field(default=20_000, ge=0)
    kcl_idle_time_between_reads_millis: int = Field(default=1_000, ge=1)
    kcl_max_records: int = Field(default=10_000, ge=1, le=10_000)
    kcl_failover_time_millis: int = Field(default=10_000, ge=1)
    kcl_shard_sync_interval_millis: int = Field(default=60_000, ge=1)
    kcl_parent_shard_poll_interval_millis: int = Field(default=10_000, ge=1)
    kcl_worker_id: str | None = Field(
        default=None, description="KCL worker id; the host name when unset"
    )
    kcl_credentials_provider: str = (
        "DefaultCredentialsProvider,DefaultAWSCredentialsProviderChain"
    )
    kcl_idle_catch_up_seconds: float = Field(default=30.0, gt=0)

    # Logging.
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_file: Path | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _bucket_sets_object_store(self) -> Settings:
        if self.chromadb_bucket and self.object_store_url.startswith("file://"):
            object.__setattr__(self, "object_store_url", f"s3://{self.chromadb_bucket}")
        return self

    @property
    def var_dirs(self) -> list[Path]:
        """Local folders the embedded default needs."""
        return [self.chroma_root, self.staging_root]
