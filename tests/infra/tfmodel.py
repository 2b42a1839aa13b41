"""Reads infra/terraform/*.tf with python-hcl2 into plain Python values.

python-hcl2 8 keeps HCL's quotes on strings and block labels and marks
blocks with ``__is_block__``; :func:`plain` removes both, so a string
attribute reads as its text and an expression as ``${...}``. Older
python-hcl2 releases return unquoted values already, which :func:`plain`
leaves unchanged.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENTRYPOINT = REPO_ROOT / "infra" / "docker" / "entrypoint.sh"
CHECKOV_SCRIPT = REPO_ROOT / "scripts" / "checkov.sh"

_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__"}
_SIMPLE_REFERENCE = re.compile(r"^\$\{(local|var)\.([A-Za-z0-9_]+)\}$")


def terraform_files() -> list[Path]:
    """Every ``.tf`` file of the root configuration, sorted."""
    return sorted(TERRAFORM_DIR.glob("*.tf"))


def parse_file(path: Path) -> dict[str, Any]:
    """Parse one file; raises whatever python-hcl2 raises on a syntax error."""
    document = plain(hcl2.loads(path.read_text(encoding="utf-8")))
    assert isinstance(document, dict)
    return document


def plain(value: Any) -> Any:
    """Strip HCL quotes and python-hcl2's metadata keys, recursively."""
    if isinstance(value, dict):
        return {
            _unquote(key): plain(item)
            for key, item in value.items()
            if key not in _META_KEYS
        }
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def _unquote(text: str) -> str:
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    return text


@dataclass
class TerraformModel:
    """The root configuration, merged over all files."""

    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        """One resource's body; fails with the known names when absent."""
        try:
            return self.resources[(kind, name)]
        except KeyError:
            known = sorted(n for k, n in self.resources if k == kind)
            raise AssertionError(
                f"no resource {kind}.{name} in Terraform; {kind} has {known}"
            ) from None

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every resource of one type, by name."""
        return {n: body for (k, n), body in self.resources.items() if k == kind}

    def resolve(self, value: Any) -> Any:
        """Follow a bare ``${local.x}`` or ``${var.x}`` (its default) reference;
        return anything else unchanged."""
        if not isinstance(value, str):
            return value
        match = _SIMPLE_REFERENCE.match(value)
        if match is None:
            return value
        scope, name = match.groups()
        if scope == "local":
            return self.resolve(self.locals[name])
        return self.resolve(self.variables[name].get("default"))


def load_model() -> TerraformModel:
    """Parse every file and merge resources, data, variables and locals."""
    model = TerraformModel()
    for path in terraform_files():
        _merge(model, parse_file(path))
    return model


@functools.cache
def cached_model() -> TerraformModel:
    """:func:`load_model`, parsed once per test session (treat as read-only)."""
    return load_model()


def _merge(model: TerraformModel, document: dict[str, Any]) -> None:
    for block in document.get("resource", []):
        _merge_labelled(model.resources, block)
    for block in document.get("data", []):
        _merge_labelled(model.data, block)
    for block in document.get("variable", []):
        model.variables.update(block)
    for block in document.get("locals", []):
        model.locals.update(block)
    model.terraform.extend(document.get("terraform", []))


def _merge_labelled(
    target: dict[tuple[str, str], dict[str, Any]], block: dict[str, Any]
) -> None:
    for kind, by_name in block.items():
        for name, body in by_name.items():
            if (kind, name) in target:
                raise AssertionError(f"{kind}.{name} is declared twice")
            target[(kind, name)] = body


def single_block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The one nested block ``name`` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list), f"expected one {name!r} block, got {blocks!r}"
    assert len(blocks) == 1, f"expected one {name!r} block, got {len(blocks)}"
    block = blocks[0]
    assert isinstance(block, dict)
    return block


def attribute_types(table: dict[str, Any]) -> dict[str, str]:
    """A DynamoDB table's attribute definitions, name to type."""
    return {a["name"]: a["type"] for a in table.get("attribute", [])}
