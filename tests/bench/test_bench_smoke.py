"""Smoke test: the delta-merge benchmark runs to its end in quick mode and
writes a results file of the documented shape. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_delta_merge_quick_writes_results_with_machine_and_ratios(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "BENCH_CACHE": str(tmp_path / "cache"),
        "BENCH_RESULTS": str(tmp_path / "results"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.delta_merge", "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    document = json.loads((tmp_path / "results" / "delta_merge_quick.json").read_text())
    assert document["benchmark"] == "delta_merge"
    assert document["quick"] is True
    assert {"cpu_count", "cpu_model", "memory_gb", "python", "chromadb"} <= set(
        document["machine"]
    )
    results = document["results"]
    assert [r["delta_records"] for r in results] == [50, 500]
    for row in results:
        assert row["consumer_records_per_s"] > 0
        assert row["raw_records_per_s"] > 0
        assert row["ratio"] == pytest.approx(
            row["consumer_records_per_s"] / row["raw_records_per_s"], rel=0.01
        )
        assert row["promotions"] == row["deltas"]
        assert {"apply", "publish", "promote"} <= set(row["consumer_phases_seconds"])
    assert not (tmp_path / "cache" / "runs").exists() or not any(
        (tmp_path / "cache" / "runs").iterdir()
    )
