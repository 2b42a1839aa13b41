#!/usr/bin/env bash
# Static security scan of the Terraform (infra/terraform/) and the consumer
# Dockerfile with checkov.
#
# checkov pins many dependencies, so it lives in its own virtualenv
# (.venv-checkov), never in the project's .venv. The scan fails on any
# failed check; the only accepted skips are written inline next to the
# resource with a reason (#checkov:skip=CKV_ID:why).
#
# Exit codes: 0 no failed checks, 1 failed checks or a parse error,
# 3 checkov could not be installed (pip's output above says why).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CHECKOV_VENV:-$root/.venv-checkov}"
version="${CHECKOV_VERSION:-3.3.30}"

if [[ ! -x "$venv/bin/checkov" ]]; then
    echo "checkov.sh: installing checkov $version into $venv" >&2
    if ! { python3 -m venv "$venv" \
            && "$venv/bin/pip" install --quiet "checkov==$version"; }; then
        echo "checkov.sh: could not install checkov" >&2
        exit 3
    fi
fi

# --skip-download: checkov otherwise fetches guideline links from its vendor's
# API; the scan itself is fully local.
common=(--quiet --compact --skip-download --download-external-modules false)
report="$(mktemp -d)"
trap 'rm -rf "$report"' EXIT
status=0
cd "$root"

"$venv/bin/checkov" "${common[@]}" --framework terraform \
    --directory infra/terraform \
    --output cli --output json --output-file-path "console,$report/results.json" \
    || status=1

# A file checkov cannot parse is silently left out of the scan, which would
# make "no failed checks" vacuous; treat a parse error as a failure.
"$venv/bin/python" - "$report/results.json" <<'PY' || status=1
import json, sys
summary = json.load(open(sys.argv[1]))["summary"]
if summary["parsing_errors"] or not summary["resource_count"]:
    sys.exit(f"checkov.sh: terraform parse problem: {summary}")
PY

"$venv/bin/checkov" "${common[@]}" --framework dockerfile \
    --file Dockerfile || status=1
exit "$status"
