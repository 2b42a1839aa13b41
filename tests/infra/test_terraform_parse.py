"""Every Terraform file parses, and the configuration keeps its own rules
(pinned provider, typed, described and validated variables).

There is no terraform binary here, so this is as far as syntax checking goes:
python-hcl2 parses HCL2, it does not validate provider schemas.
"""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest
from tfmodel import TERRAFORM_DIR, cached_model, parse_file, terraform_files

from journal.errors import InvalidCollectionName
from journal.events import validate_collection_name


def test_terraform_directory_has_the_split_configuration() -> None:
    names = {path.name for path in terraform_files()}

    assert {"versions.tf", "variables.tf", "outputs.tf"} <= names
    assert len(names) >= 8, names


@pytest.mark.parametrize("path", terraform_files(), ids=lambda p: p.name)
def test_terraform_file_parses(path: Path) -> None:
    try:
        parse_file(path)
    except Exception as error:  # any parser error is the failure reported
        pytest.fail(f"{path.relative_to(TERRAFORM_DIR)} does not parse: {error}")


def test_parser_rejects_a_syntax_error() -> None:
    # Guards the test above against a parser that accepts anything.
    with pytest.raises(Exception):  # noqa: B017 - the parser's error types vary
        hcl2.loads('resource "aws_s3_bucket" "x" {\n  bucket = \n')


def test_aws_provider_is_pinned_to_major_version_5() -> None:
    model = cached_model()

    providers = [
        provider
        for block in model.terraform
        for required in block.get("required_providers", [])
        for provider in required.values()
    ]

    assert {"source": "hashicorp/aws", "version": "~> 5.0"} in providers


def test_every_variable_is_typed_and_described() -> None:
    model = cached_model()

    untyped = [n for n, v in model.variables.items() if "type" not in v]
    undescribed = [n for n, v in model.variables.items() if not v.get("description")]

    assert model.variables
    assert untyped == []
    assert undescribed == []


@pytest.mark.parametrize(
    "name", ["snapshot_keep", "versions_keep", "collections", "consumer_image"]
)
def test_variable_with_a_rule_is_validated(name: str) -> None:
    variable = cached_model().variables[name]

    assert variable.get("validation"), f"variable {name} has no validation"


@pytest.mark.parametrize("name", ["snapshot_keep", "versions_keep"])
def test_retention_counts_must_be_at_least_one(name: str) -> None:
    conditions = [v["condition"] for v in cached_model().variables[name]["validation"]]

    assert any(f"var.{name} >= 1" in c for c in conditions), conditions


def _terraform_collection_regex() -> re.Pattern[str]:
    (validation,) = cached_model().variables["collections"]["validation"]
    match = re.search(r'regex\("(.+?)", c\)', validation["condition"])
    assert match, validation["condition"]
    # HCL string escapes: a backslash in the pattern is written twice.
    return re.compile(match.group(1).replace("\\\\", "\\"))


@pytest.mark.parametrize(
    "name",
    [
        "lines",
        "words",
        "a1b",
        "A_b-9",
        "ab",
        "_ab",
        "ab-",
        "a/b",
        "a.b",
        "..",
        "a b",
        "x" * 63,
        "x" * 64,
        "tenant_7-words",
    ],
)
def test_collection_variable_accepts_exactly_the_event_model_names(
    name: str,
) -> None:
    try:
        validate_collection_name(name)
        valid_in_code = True
    except InvalidCollectionName:
        valid_in_code = False

    valid_in_terraform = _terraform_collection_regex().fullmatch(name) is not None

    assert valid_in_terraform == valid_in_code


def test_default_collections_pass_their_own_validation() -> None:
    model = cached_model()
    pattern = _terraform_collection_regex()

    defaults = model.variables["collections"]["default"]

    assert defaults
    assert all(pattern.fullmatch(name) for name in defaults)
