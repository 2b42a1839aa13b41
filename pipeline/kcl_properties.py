"""The KCL MultiLangDaemon's properties file, rendered from settings.

The daemon (Java) reads one ``.properties`` file: which stream, which
application (also the name of its lease table), which endpoints, and which
executable to start per shard. The property names below are the ones the
KCL 2.5.8 multilang configurator accepts (its ``MultiLangDaemonConfiguration``
setters); each was exercised against the daemon here (``shared/KCL.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from journal.errors import ChromaJournalError

if TYPE_CHECKING:
    from chroma_journal.settings import Settings

RetrievalMode = Literal["POLLING", "FANOUT"]
MetricsLevel = Literal["NONE", "SUMMARY", "DETAILED"]
InitialPosition = Literal["TRIM_HORIZON", "LATEST"]

#: KCL 3.x resolves only AWS SDK v2 provider names (``DefaultCredentialsProvider``)
#: and KCL 2.5.x only SDK v1 names (``DefaultAWSCredentialsProviderChain``);
#: both skip a name they cannot resolve, so listing both works with either
#: daemon (their ``AWSCredentialsProviderPropertyValueDecoder`` classes).
DEFAULT_CREDENTIALS_PROVIDER = (
    "DefaultCredentialsProvider,DefaultAWSCredentialsProviderChain"
)


class KCLConfigError(ChromaJournalError):
    """The settings cannot make a valid KCL properties file."""


@dataclass(frozen=True)
class KCLConfig:
    """Everything the daemon's properties file says.

    ``executable`` is split on spaces by the daemon, so a path to it may not
    contain spaces.
    """

    stream_name: str
    application_name: str
    region: str
    executable: str
    endpoint_url: str | None = None
    retrieval_mode: RetrievalMode = "POLLING"
    metrics_level: MetricsLevel = "SUMMARY"
    initial_position: InitialPosition = "TRIM_HORIZON"
    # The daemon's default of 0 lets SIGTERM end the JVM before the processor
    # hears shutdown_requested, so nothing is checkpointed (shared/KCL.md).
    shutdown_grace_millis: int = 20_000
    idle_time_between_reads_millis: int = 1_000
    max_records: int = 10_000
    failover_time_millis: int = 10_000
    shard_sync_interval_millis: int = 60_000
    parent_shard_poll_interval_millis: int = 10_000
    worker_id: str | None = None
    credentials_provider: str = DEFAULT_CREDENTIALS_PROVIDER
    processing_language: str = "python/3"

    @classmethod
    def from_settings(cls, settings: Settings) -> KCLConfig:
        """The configuration the ``KCL_*`` and AWS settings describe."""
        if not settings.kinesis_stream_name:
            raise KCLConfigError("KINESIS_STREAM_NAME must name the stream")
        return cls(
            stream_name=settings.kinesis_stream_name,
            application_name=settings.kcl_application_name,
            region=settings.aws_region,
            executable=settings.kcl_executable,
            endpoint_url=settings.aws_endpoint_url,
            retrieval_mode=settings.kcl_retrieval_mode,
            metrics_level=settings.kcl_metrics_level,
            initial_position=settings.kcl_initial_position,
            shutdown_grace_millis=settings.kcl_shutdown_grace_millis,
            idle_time_between_reads_millis=(
                settings.kcl_idle_time_between_reads_millis
            ),
            max_records=settings.kcl_max_records,
            failover_time_millis=settings.kcl_failover_time_millis,
            shard_sync_interval_millis=settings.kcl_shard_sync_interval_millis,
            parent_shard_poll_interval_millis=(
                settings.kcl_parent_shard_poll_interval_millis
            ),
            worker_id=settings.kcl_worker_id,
            credentials_provider=settings.kcl_credentials_provider,
        )


def render_properties(cfg: KCLConfig) -> str:
    """The properties file text for ``cfg``."""
    lines = ["# Written by chroma-journal kcl-properties; do not edit by hand."]
    lines += [f"{key} = {_escape(key, value)}" for key, value in _pairs(cfg)]
    return "\n".join(lines) + "\n"


def _pairs(cfg: KCLConfig) -> list[tuple[str, str]]:
    pairs = [
        ("executableName", cfg.executable),
        ("processingLanguage", cfg.processing_language),
        ("streamName", cfg.stream_name),
        ("applicationName", cfg.application_name),
        ("regionName", cfg.region),
        ("AWSCredentialsProvider", cfg.credentials_provider),
        ("initialPositionInStream", cfg.initial_position),
        ("retrievalMode", cfg.retrieval_mode),
        ("metricsLevel", cfg.metrics_level),
        ("shutdownGraceMillis", str(cfg.shutdown_grace_millis)),
        ("idleTimeBetweenReadsInMillis", str(cfg.idle_time_between_reads_millis)),
        ("maxRecords", str(cfg.max_records)),
        ("failoverTimeMillis", str(cfg.failover_time_millis)),
        ("shardSyncIntervalMillis", str(cfg.shard_sync_interval_millis)),
        (
            "parentShardPollIntervalMillis",
            str(cfg.parent_shard_poll_interval_millis),
        ),
        # An idle shard still calls the processor, which is how it notices
        # that it has been idle long enough to compare with the journal.
        ("callProcessRecordsEvenForEmptyRecordList", "true"),
    ]
    if cfg.endpoint_url:
        pairs += [
            ("kinesisEndpoint", cfg.endpoint_url),
            ("dynamoDBEndpoint", cfg.endpoint_url),
        ]
    if cfg.worker_id:
        pairs.append(("workerId", cfg.worker_id))
    return pairs


def _escape(key: str, value: str) -> str:
    if not value or any(ord(char) < 32 for char in value):
        raise KCLConfigError(f"{key} must be non-empty and on one line: {value!r}")
    # In .properties files a backslash escapes the next character.
    return value.replace("\\", "\\\\")
