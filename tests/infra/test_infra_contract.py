"""The code and the infrastructure agree.

- Table keys, TTL attributes, metric names, S3 prefixes and Lambda handlers
  in Terraform equal the constants in ``journal/aws_schema.py`` that the code
  uses.
- Every environment variable the container and the Lambdas are given is a
  field of ``Settings`` (read dynamically, so new settings are covered), and
  every required setting is given to each of them.
- Every handler named in Terraform imports and is callable. A handler whose
  module does not exist yet fails this test: it would fail in Lambda too.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from tfmodel import TerraformModel, attribute_types, load_model, single_block

from chroma_journal.settings import Settings
from journal import aws_schema
from journal.deltas import delta_key
from journal.scheduled import SCHEDULED_TIME_KEY

# Names the Lambda runtime sets itself and refuses in a function's
# environment (AWS Lambda developer guide, "Defined runtime environment
# variables").
LAMBDA_RESERVED = re.compile(
    r"^(_HANDLER|_X_AMZN_TRACE_ID|AWS_REGION|AWS_DEFAULT_REGION|AWS_EXECUTION_ENV"
    r"|AWS_LAMBDA_.*|AWS_ACCESS_KEY.*|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN"
    r"|LAMBDA_TASK_ROOT|LAMBDA_RUNTIME_DIR)$"
)

MODEL = load_model()
LAMBDAS = MODEL.of_kind("aws_lambda_function")


def _settings_env_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def _required_settings() -> set[str]:
    return {
        name.upper()
        for name, info in Settings.model_fields.items()
        if info.is_required()
    }


def _map_keys(model: TerraformModel, value: Any) -> set[str]:
    resolved = model.resolve(value)
    assert isinstance(resolved, dict), f"expected a map literal, got {value!r}"
    return set(resolved)


def _container_environment(model: TerraformModel) -> dict[str, Any]:
    task = model.resource("aws_ecs_task_definition", "consumer")
    definitions = task["container_definitions"]
    # The definitions are one jsonencode() expression; the environment must
    # come from exactly one local map so that this test sees all of it.
    sources = re.findall(
        r"environment\s*=\s*\[for \w+ in sort\(keys\(local\.(\w+)\)\)", definitions
    )
    assert len(sources) == 1, definitions
    assert len(re.findall(r"\benvironment\s*=", definitions)) == 1, definitions
    # Other ways to hand a container variables would bypass this check.
    assert "environmentFiles" not in definitions
    assert "secrets" not in definitions
    environment = model.locals[sources[0]]
    assert isinstance(environment, dict)
    return environment


def _lambda_environment(name: str) -> set[str]:
    environment = single_block(LAMBDAS[name], "environment")
    return _map_keys(MODEL, environment["variables"])


RUNTIMES = ["ecs:consumer", *(f"lambda:{name}" for name in sorted(LAMBDAS))]


def _environment_of(runtime: str) -> set[str]:
    kind, _, name = runtime.partition(":")
    if kind == "ecs":
        return set(_container_environment(MODEL))
    return _lambda_environment(name)


# --- Tables --------------------------------------------------------------------


def test_journal_table_keys_equal_the_backend_schema() -> None:
    table = MODEL.resource("aws_dynamodb_table", "journal")

    assert table["hash_key"] == aws_schema.JOURNAL_PARTITION_KEY
    assert table["range_key"] == aws_schema.JOURNAL_SORT_KEY
    assert attribute_types(table) == {
        aws_schema.JOURNAL_PARTITION_KEY: aws_schema.JOURNAL_PARTITION_KEY_TYPE,
        aws_schema.JOURNAL_SORT_KEY: aws_schema.JOURNAL_SORT_KEY_TYPE,
    }


def test_journal_table_is_protected_and_encrypted() -> None:
    table = MODEL.resource("aws_dynamodb_table", "journal")

    assert table["deletion_protection_enabled"] is True
    assert single_block(table, "point_in_time_recovery")["enabled"] is True
    encryption = single_block(table, "server_side_encryption")
    assert encryption["enabled"] is True
    assert "aws_kms_key" in encryption["kms_key_arn"]


@pytest.mark.parametrize(
    ("name", "key", "key_type", "ttl"),
    [
        (
            "leases",
            aws_schema.LEASE_PARTITION_KEY,
            aws_schema.LEASE_PARTITION_KEY_TYPE,
            aws_schema.LEASE_TTL_ATTRIBUTE,
        ),
        (
            "status",
            aws_schema.STATUS_PARTITION_KEY,
            aws_schema.STATUS_PARTITION_KEY_TYPE,
            aws_schema.STATUS_TTL_ATTRIBUTE,
        ),
    ],
)
def test_lease_and_status_tables_equal_the_backend_schema(
    name: str, key: str, key_type: str, ttl: str
) -> None:
    table = MODEL.resource("aws_dynamodb_table", name)

    assert table["hash_key"] == key
    assert "range_key" not in table
    assert attribute_types(table) == {key: key_type}
    assert single_block(table, "ttl") == {"attribute_name": ttl, "enabled": True}


def test_kcl_tables_are_named_and_keyed_as_kcl_expects() -> None:
    app = MODEL.variables["kcl_application_name"]["default"]
    lease, metrics, coordinator = aws_schema.kcl_table_names(app)

    tables = {
        MODEL.resolve(t["name"]).replace("${var.kcl_application_name}", app): t
        for t in (
            MODEL.resource("aws_dynamodb_table", "kcl_leases"),
            MODEL.resource("aws_dynamodb_table", "kcl_worker_metrics"),
            MODEL.resource("aws_dynamodb_table", "kcl_coordinator_state"),
        )
    }

    assert set(tables) == {lease, metrics, coordinator}
    assert tables[lease]["hash_key"] == aws_schema.KCL_LEASE_TABLE_KEY
    assert tables[metrics]["hash_key"] == aws_schema.KCL_WORKER_METRICS_TABLE_KEY
    assert tables[coordinator]["hash_key"] == (
        aws_schema.KCL_COORDINATOR_STATE_TABLE_KEY
    )
    index = single_block(tables[lease], "global_secondary_index")
    assert index["name"] == aws_schema.KCL_LEASE_OWNER_INDEX
    assert index["hash_key"] == aws_schema.KCL_LEASE_OWNER_ATTRIBUTE
    assert index["range_key"] == aws_schema.KCL_LEASE_TABLE_KEY
    assert index["projection_type"] == "KEYS_ONLY"


# --- Environment -----------------------------------------------------------


def test_runtimes_found_are_the_consumer_and_both_lambdas() -> None:
    assert set(RUNTIMES) == {
        "ecs:consumer",
        "lambda:stream_adapter",
        "lambda:snapshot_requests",
    }


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_environment_variable_given_is_a_setting(runtime: str) -> None:
    given = {name.upper() for name in _environment_of(runtime)}

    unknown = sorted(given - _settings_env_names())

    assert unknown == [], (
        f"{runtime} is given environment variables that Settings does not "
        f"read: {unknown}"
    )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_required_setting_is_given(runtime: str) -> None:
    given = {name.upper() for name in _environment_of(runtime)}

    missing = sorted(_required_settings() - given)

    assert missing == [], f"{runtime} lacks required settings {missing}"


@pytest.mark.parametrize("name", sorted(LAMBDAS))
def test_lambda_environment_avoids_reserved_names(name: str) -> None:
    reserved = sorted(n for n in _lambda_environment(name) if LAMBDA_RESERVED.match(n))

    assert reserved == []


def test_consumer_uses_efs_for_chroma_root_and_local_disk_for_staging() -> None:
    environment = _container_environment(MODEL)
    definitions = MODEL.resource("aws_ecs_task_definition", "consumer")[
        "container_definitions"
    ]

    assert MODEL.resolve(environment["CHROMA_ROOT"]) == "/mnt/chroma"
    assert 'sourceVolume = "chroma", containerPath = local.chroma_root' in (definitions)
    assert 'sourceVolume = "staging", containerPath = local.staging_root' in (
        definitions
    )
    assert environment["STAGING_ROOT"] == "${local.staging_root}"
    assert environment["LOG_FORMAT"] == "json"


def test_consumer_is_given_the_kcl_application_and_stream() -> None:
    environment = _container_environment(MODEL)

    assert environment["KCL_APPLICATION_NAME"] == "${var.kcl_application_name}"
    assert environment["KINESIS_STREAM_NAME"] == "${aws_kinesis_stream.events.name}"


# --- Handlers ----------------------------------------------------------------


def test_handlers_in_terraform_are_the_schema_handlers() -> None:
    handlers = {body["handler"] for body in LAMBDAS.values()}

    assert handlers == {
        aws_schema.STREAM_ADAPTER_HANDLER,
        aws_schema.SNAPSHOT_SCHEDULE_HANDLER,
    }


@pytest.mark.parametrize(
    "handler", sorted({body["handler"] for body in LAMBDAS.values()})
)
def test_handler_named_in_terraform_is_importable(handler: str) -> None:
    module_name, _, function_name = handler.rpartition(".")

    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        pytest.fail(
            f"Lambda handler {handler!r} is named in Terraform but module "
            f"{module_name!r} cannot be imported: {error}"
        )

    assert callable(getattr(module, function_name, None)), (
        f"{module_name} has no callable {function_name!r}"
    )


def test_stream_adapter_reports_partial_failures_with_bounded_retries() -> None:
    mapping = MODEL.resource("aws_lambda_event_source_mapping", "receipts_stream")

    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["bisect_batch_on_function_error"] is True
    assert mapping["maximum_retry_attempts"] == "${var.stream_adapter_max_retries}"
    on_failure = single_block(single_block(mapping, "destination_config"), "on_failure")
    assert "aws_sqs_queue" in on_failure["destination_arn"]


def test_snapshot_schedule_input_uses_the_schema_key() -> None:
    schedule = MODEL.resource("aws_scheduler_schedule", "snapshot_requests")

    target = single_block(schedule, "target")

    key = aws_schema.SNAPSHOT_SCHEDULE_COLLECTIONS_KEY
    # The handler keys its appends by the scheduled time, so a retried
    # invocation appends nothing twice; the scheduler fills the placeholder.
    assert target["input"] == (
        f"${{jsonencode({{{key} = var.collections, {SCHEDULED_TIME_KEY} = "
        '"<aws.scheduler.scheduled-time>"})}'
    )


# --- Metrics, alarms and S3 layout ----------------------------------------------


def test_metrics_namespace_equals_the_schema() -> None:
    assert MODEL.locals["metrics_namespace"] == aws_schema.METRICS_NAMESPACE


@pytest.mark.parametrize(
    ("alarm", "metric"),
    [
        ("consumer_lag", aws_schema.METRIC_CONSUMER_LAG),
        ("parked_events", aws_schema.METRIC_PARKED_EVENTS),
    ],
)
def test_per_collection_alarms_watch_the_schema_metric(alarm: str, metric: str) -> None:
    body = MODEL.resource("aws_cloudwatch_metric_alarm", alarm)

    assert MODEL.resolve(body["namespace"]) == aws_schema.METRICS_NAMESPACE
    assert body["metric_name"] == metric
    assert body["for_each"] == "${toset(var.collections)}"
    assert body["dimensions"] == {
        aws_schema.METRIC_DIMENSION_COLLECTION: "${each.value}"
    }


def test_parked_events_alarm_fires_above_zero() -> None:
    body = MODEL.resource("aws_cloudwatch_metric_alarm", "parked_events")

    assert body["comparison_operator"] == "GreaterThanThreshold"
    assert body["threshold"] == 0


def test_task_role_may_publish_metrics_only_to_known_namespaces() -> None:
    policy = MODEL.data[("aws_iam_policy_document", "consumer_task")]

    (statement,) = [
        s for s in policy["statement"] if "cloudwatch:PutMetricData" in s["actions"]
    ]

    condition = single_block(statement, "condition")
    assert condition["variable"] == "cloudwatch:namespace"
    assert condition["values"] == [
        "${local.metrics_namespace}",
        "${var.kcl_application_name}",
    ]


def test_s3_prefixes_in_terraform_match_the_object_store_layout() -> None:
    deltas = MODEL.locals["delta_object_arns"]
    snapshots = MODEL.locals["snapshot_object_arns"]

    assert f"/${{c}}/{aws_schema.DELTAS_PREFIX}/*" in deltas
    assert f"/${{c}}/{aws_schema.SNAPSHOTS_PREFIX}/*" in snapshots
    assert delta_key("lines", "d1").startswith(f"lines/{aws_schema.DELTAS_PREFIX}/")
