"""End-to-end latency: from append to promotion, at a steady event rate.

A producer thread appends one ``label_update`` per append call at a steady
rate (10, 50, 200 events/s) to the local SQLite journal; the consumer runs
its normal tailing loop (``Consumer.run``) in another thread of the same
process, with the shipped group-commit settings (a batch closes at 500
events, 20,000 delta records or when its oldest event is 0.2 s old; poll
interval 0.5 s when idle). Latency per event = wall time when its batch's
promotion hook ran minus the event's ``recorded_at``.

    python -m bench.latency [--quick] [--seconds 60] [--rates 10,50,200]
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench._common import (
    CACHE_DIR,
    COLLECTION,
    ensure_bases,
    label_payload,
    percentile,
    print_table,
    quiet,
    rig_copy,
    word_rows,
    write_results,
)
from pipeline.config import ConsumerConfig

NAME = "latency"


def run_rate(size: int, dim: int, rate: float, seconds: float) -> dict[str, Any]:
    """Latencies at one steady rate."""
    latencies: list[float] = []
    batches: list[int] = []

    def promoted(_manifest: Any, events: Any) -> None:
        now = datetime.now(UTC)
        batches.append(len(events))
        latencies.extend((now - e.recorded_at).total_seconds() for e in events)

    rows = word_rows(min(size, int(rate * seconds) + 10))
    config = ConsumerConfig()  # shipped defaults, linger included
    with rig_copy(
        size, dim, CACHE_DIR / "runs" / f"{NAME}-{rate}", config, promoted
    ) as rig:
        warm, warm_batches = len(latencies), len(batches)
        stop = threading.Event()
        worker = threading.Thread(target=rig.consumer.run, args=(stop,), daemon=True)
        worker.start()
        sent = _produce(rig, rows, rate, seconds)
        deadline = time.monotonic() + 30
        while len(latencies) - warm < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        worker.join(timeout=60)
    measured = latencies[warm:]
    measured_batches = batches[warm_batches:]
    return {
        "base_records": size,
        "dimension": dim,
        "rate_events_per_s": rate,
        "duration_s": seconds,
        "events_sent": sent,
        "events_promoted": len(measured),
        "promotions": len(measured_batches),
        "mean_batch_events": round(
            sum(measured_batches) / max(1, len(measured_batches)), 1
        ),
        "median_s": round(percentile(measured, 0.5), 3),
        "p99_s": round(percentile(measured, 0.99), 3),
        "max_s": round(max(measured, default=0.0), 3),
        "group_commit": {
            "max_events": config.group_commit_max_events,
            "max_records": config.group_commit_max_records,
            "max_seconds": config.group_commit_max_seconds,
            "poll_interval_seconds": config.poll_interval_seconds,
        },
    }


def _produce(rig: Any, rows: list[Any], rate: float, seconds: float) -> int:
    """Append one event per call at ``rate`` per second; events sent."""
    start = time.monotonic()
    count = int(rate * seconds)
    for index in range(count):
        due = start + index / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        row = rows[1 + index % (len(rows) - 1)]
        rig.append([label_payload(row, "GRAND_TOTAL" if index % 2 else "TAX")])
    return count


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run each rate, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per rate, tiny base")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rates", default="10,50,200")
    parser.add_argument("--cell", default="10000x384", help="base size x dim")
    args = parser.parse_args(argv)
    quiet()
    size, dim = (
        (2000, 64) if args.quick else tuple(int(x) for x in args.cell.split("x"))
    )
    seconds = 3.0 if args.quick else args.seconds
    rates = [10.0, 50.0] if args.quick else [float(r) for r in args.rates.split(",")]
    ensure_bases([size], dim)
    rows = [run_rate(size, dim, rate, seconds) for rate in rates]
    print_table(
        f"Latency append -> promotion on {size}x{dim}, {seconds:.0f} s per rate",
        [
            "events/s",
            "sent",
            "promoted",
            "promotions",
            "events/batch",
            "median s",
            "p99 s",
            "max s",
        ],
        [
            [
                r["rate_events_per_s"],
                r["events_sent"],
                r["events_promoted"],
                r["promotions"],
                r["mean_batch_events"],
                r["median_s"],
                r["p99_s"],
                r["max_s"],
            ]
            for r in rows
        ],
    )
    write_results(
        f"{NAME}_quick" if args.quick else NAME,
        {
            "quick": args.quick,
            "method": __doc__,
            "collection": COLLECTION,
            "results": rows,
        },
    )
    return {"results": rows}


if __name__ == "__main__":
    main()
