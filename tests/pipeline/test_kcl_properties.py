"""The daemon's properties file says what the settings say."""

from __future__ import annotations

import pytest

from pipeline.kcl_properties import KCLConfig, KCLConfigError, render_properties


def parse(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            pairs[key] = value
    return pairs


def config(**overrides: object) -> KCLConfig:
    values: dict[str, object] = {
        "stream_name": "journal-stream",
        "application_name": "chroma-journal-consumer",
        "region": "eu-west-1",
        "executable": "/opt/app/bin/chroma-journal kcl-processor",
    }
    values.update(overrides)
    return KCLConfig(**values)  # type: ignore[arg-type]


def test_properties_name_stream_application_and_executable() -> None:
    props = parse(render_properties(config()))
    assert props["streamName"] == "journal-stream"
    assert props["applicationName"] == "chroma-journal-consumer"
    assert props["regionName"] == "eu-west-1"
    assert props["executableName"] == "/opt/app/bin/chroma-journal kcl-processor"
    assert props["AWSCredentialsProvider"] == (
        "DefaultCredentialsProvider,DefaultAWSCredentialsProviderChain"
    )
    assert props["shutdownGraceMillis"] == "20000"
    assert props["callProcessRecordsEvenForEmptyRecordList"] == "true"


def test_endpoints_are_written_only_when_set() -> None:
    assert "kinesisEndpoint" not in parse(render_properties(config()))
    props = parse(render_properties(config(endpoint_url="http://127.0.0.1:4566")))
    assert props["kinesisEndpoint"] == "http://127.0.0.1:4566"
    assert props["dynamoDBEndpoint"] == "http://127.0.0.1:4566"


def test_tunables_are_rendered() -> None:
    cfg = config(
        retrieval_mode="FANOUT",
        metrics_level="NONE",
        initial_position="LATEST",
        max_records=50,
        worker_id="worker-a",
    )
    props = parse(render_properties(cfg))
    assert props["retrievalMode"] == "FANOUT"
    assert props["metricsLevel"] == "NONE"
    assert props["initialPositionInStream"] == "LATEST"
    assert props["maxRecords"] == "50"
    assert props["workerId"] == "worker-a"


def test_backslash_is_escaped() -> None:
    props = parse(render_properties(config(application_name="a\\b")))
    assert props["applicationName"] == "a\\\\b"


def test_value_with_newline_is_refused() -> None:
    with pytest.raises(KCLConfigError, match="applicationName"):
        render_properties(config(application_name="a\nstreamName = other"))
