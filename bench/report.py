"""Markdown tables of the latest results, for bench/README.md.

python -m bench.report        # prints markdown for every results file
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bench._common import RESULTS_DIR

Row = dict[str, Any]

#: The old design's cycle as the issue measured it in production (download,
#: apply, upload); the updates benchmark's own old-design figure is a
#: local-disk lower bound.
REAL_CYCLE_SECONDS = 19.0


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "met" if value else "**not met**"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _mb(value: int) -> float:
    return round(value / 1e6, 2)


def _spread(row: Row, key: str) -> str:
    """``min-max`` of a repeated cell's runs, or "1 run"."""
    if row.get("repeats", 1) < 2:
        return "1 run"
    return f"{row[key + '_min']:.3f}-{row[key + '_max']:.3f} ({row['repeats']} runs)"


def _without_publish(row: Row, phases_key: str) -> float:
    """The ratio to raw had publishing cost nothing: how much of the gap is
    the copy of the changed files (chroma.sqlite3 above all) to the store."""
    publish = row[phases_key].get("publish", 0.0)
    rest = row["consumer_seconds"] - publish
    return round(row["raw_seconds"] / rest, 3) if rest > 0 else 0.0


def _phases(row: Row) -> str:
    phases = row["consumer_phases_seconds"]
    names = ("apply", "digest", "compact", "publish")
    return " / ".join(f"{phases.get(name, 0.0):.2f}" for name in names)


def delta_merge(rows: list[Row]) -> str:
    """Delta merge table."""
    return table(
        ["base", "dim", "delta", "deltas", "consumer rec/s", "raw rec/s", "ratio",
         "ratio range", "goal >= 0.9", "ratio without publish",
         "phases s (apply/digest/compact/publish)", "MB published/promotion"],
        [
            [r["base_records"], r["dimension"], r["delta_records"], r["deltas"],
             r["consumer_records_per_s"], r["raw_records_per_s"], r["ratio"],
             _spread(r, "ratio"), r["goal_met"],
             _without_publish(r, "consumer_phases_seconds"),
             _phases(r), _mb(r["bytes_published_per_promotion"])]
            for r in rows
        ],
    )  # fmt: skip


def updates(rows: list[Row]) -> str:
    """Updates table."""
    return table(
        ["base", "dim", "kind", "events", "records", "consumer ev/s", "raw ev/s",
         "old design ev/s", "vs raw", "range", "goal >= 0.8",
         "vs raw without publish", "vs old", "goal >= 10x",
         "vs the 19 s real cycle", "phases s (apply/digest/compact/publish)"],
        [
            [r["base_records"], r["dimension"], r["kind"], r["events"],
             r["records_updated"], r["consumer_events_per_s"], r["raw_events_per_s"],
             r["old_design_events_per_s"], r["ratio_vs_raw"],
             _spread(r, "ratio_vs_raw"), r["goal_vs_raw_met"],
             _without_publish(r, "consumer_phases_seconds"),
             r["ratio_vs_old_design"], r["goal_vs_old_met"],
             round(REAL_CYCLE_SECONDS / r["consumer_seconds"], 1), _phases(r)]
            for r in rows
        ],
    )  # fmt: skip


def write_amplification(rows: list[Row]) -> str:
    """Write amplification table."""
    return table(
        ["base", "dim", "batch", "events", "MB published", "MB old design (full copy)",
         "fraction", "old / consumer"],
        [
            [r["base_records"], r["dimension"], r["batch"], r["events"],
             _mb(r["bytes_published"]), _mb(r["old_design_bytes"]),
             r["fraction_of_old_design"], r["old_design_over_consumer"]]
            for r in rows
        ],
    )  # fmt: skip


def latency(rows: list[Row]) -> str:
    """Latency table."""
    return table(
        ["base", "dim", "events/s", "duration s", "sent", "promoted", "promotions",
         "events/batch", "median s", "p99 s", "max s"],
        [
            [r["base_records"], r["dimension"], r["rate_events_per_s"],
             r["duration_s"], r["events_sent"], r["events_promoted"], r["promotions"],
             r["mean_batch_events"], r["median_s"], r["p99_s"], r["max_s"]]
            for r in rows
        ],
    )  # fmt: skip


def memory(rows: list[Row]) -> str:
    """Memory table."""
    return table(
        ["base", "dim", "work", "consumer peak RSS MB", "raw peak RSS MB",
         "consumer / raw"],
        [
            [r["base_records"], r["dimension"],
             f"delta {r['delta_records']} + {r['label_events']} labels",
             r["consumer"]["vmhwm_mb"], r["raw"]["vmhwm_mb"], r["consumer_over_raw"]]
            for r in rows
        ],
    )  # fmt: skip


def scaling(rows: list[Row]) -> str:
    """Scaling table."""
    return table(
        ["base", "batch", "consumer s", "raw s", "x raw", "setup", "apply", "digest",
         "publish", "MB published", "sqlite MB", "collection MB"],
        [
            [r["base_records"], r["batch"], r["consumer_seconds"], r["raw_seconds"],
             r["consumer_over_raw_time"], r["phases_seconds"].get("setup", 0.0),
             r["phases_seconds"].get("apply", 0.0),
             r["phases_seconds"].get("digest", 0.0),
             r["phases_seconds"].get("publish", 0.0), _mb(r["bytes_published"]),
             _mb(r["sqlite_bytes"]), _mb(r["collection_bytes"])]
            for r in rows
        ],
    )  # fmt: skip


def replay(rows: list[Row]) -> str:
    """Replay table."""
    return table(
        ["mode", "records", "dim", "events", "seconds", "raw ingest s", "records/s",
         "raw records/s", "ratio"],
        [
            [r["mode"], r["records"], r["dimension"], r["events_applied"],
             r["seconds"], r["raw_ingest_seconds"], r["records_per_s"],
             r["raw_records_per_s"], r["ratio_vs_raw"]]
            for r in rows
        ],
    )  # fmt: skip


RENDERERS: dict[str, Callable[[list[Row]], str]] = {
    "delta_merge": delta_merge,
    "updates": updates,
    "write_amplification": write_amplification,
    "latency": latency,
    "memory": memory,
    "scaling": scaling,
    "replay": replay,
}


def main() -> None:
    """Print a section per results file present."""
    for name, render in RENDERERS.items():
        path = RESULTS_DIR / f"{name}.json"
        if not path.exists():
            continue
        document = json.loads(path.read_text())
        print(f"### {name} ({document['date']})\n")
        print(render(document["results"]))
        print()


if __name__ == "__main__":
    main()
