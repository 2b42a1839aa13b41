"""Names that the AWS resources and the code must agree on.

The Terraform under ``infra/terraform/`` repeats each of these literally (HCL
cannot import Python); ``tests/infra/test_contract.py`` parses the Terraform
and fails when the two drift apart. Change a name here and in the Terraform in
the same commit.
"""

from __future__ import annotations

from typing import Final, Literal

#: DynamoDB attribute types used by the key schemas below.
AttributeType = Literal["S", "N"]

# The journal table (DESIGN section 4): one item per event.
JOURNAL_PARTITION_KEY: Final = "collection"
JOURNAL_PARTITION_KEY_TYPE: Final[AttributeType] = "S"
JOURNAL_SORT_KEY: Final = "seq"
JOURNAL_SORT_KEY_TYPE: Final[AttributeType] = "N"

# The collection lease table: one item per collection, expired by TTL as a
# clean-up only (ownership is decided by the expiry value, never by TTL, which
# DynamoDB applies up to days late).
LEASE_PARTITION_KEY: Final = "collection"
LEASE_PARTITION_KEY_TYPE: Final[AttributeType] = "S"
LEASE_TTL_ATTRIBUTE: Final = "expires_at_epoch"

# The status mirror table: one item per collection.
STATUS_PARTITION_KEY: Final = "collection"
STATUS_PARTITION_KEY_TYPE: Final[AttributeType] = "S"
STATUS_TTL_ATTRIBUTE: Final = "expires_at_epoch"

# Tables the KCL MultiLangDaemon uses. The lease table is named after the KCL
# application; KCL 3.x adds two more tables named with these suffixes and a
# global secondary index on the lease table (KCL's DynamoDBLeaseRefresher,
# WorkerMetricStats and CoordinatorState classes).
KCL_LEASE_TABLE_KEY: Final = "leaseKey"
KCL_LEASE_OWNER_ATTRIBUTE: Final = "leaseOwner"
KCL_LEASE_OWNER_INDEX: Final = "LeaseOwnerToLeaseKeyIndex"
KCL_WORKER_METRICS_TABLE_SUFFIX: Final = "-WorkerMetricStats"
KCL_WORKER_METRICS_TABLE_KEY: Final = "wid"
KCL_COORDINATOR_STATE_TABLE_SUFFIX: Final = "-CoordinatorState"
KCL_COORDINATOR_STATE_TABLE_KEY: Final = "key"

# Lambda entry points, as "module.function" (the Lambda handler syntax).
STREAM_ADAPTER_HANDLER: Final = "journal.stream_adapter.handler"
SNAPSHOT_SCHEDULE_HANDLER: Final = "journal.scheduled.handler"

#: Key of the scheduled event's JSON input that lists the collections to
#: request snapshots for (EventBridge Scheduler sends the input unchanged).
SNAPSHOT_SCHEDULE_COLLECTIONS_KEY: Final = "collections"

# Object store layout (DESIGN section 7): <collection>/<prefix>/...
DELTAS_PREFIX: Final = "deltas"
SNAPSHOTS_PREFIX: Final = "snapshots"

# Custom CloudWatch metrics. The task role may publish only to this namespace
# (and to the KCL application's own namespace, where KCL publishes).
METRICS_NAMESPACE: Final = "ChromaJournal"
METRIC_DIMENSION_COLLECTION: Final = "Collection"
#: Journal head minus applied seq, per collection (a gauge).
METRIC_CONSUMER_LAG: Final = "ConsumerLag"
#: Events currently parked, per collection (a gauge; alarms above zero).
METRIC_PARKED_EVENTS: Final = "ParkedEvents"


def kcl_table_names(application_name: str) -> tuple[str, str, str]:
    """The lease, worker-metrics and coordinator-state table names that KCL
    3.x uses for ``application_name`` by default."""
    return (
        application_name,
        application_name + KCL_WORKER_METRICS_TABLE_SUFFIX,
        application_name + KCL_COORDINATOR_STATE_TABLE_SUFFIX,
    )
