"""Metadata and label updates: events/s through the consumer, against a raw
ChromaDB ``update`` of the same ids and against the old design's cycle.

Per kind (``label_update``, ``metadata_update``), one batch of N events
(N = 1000 by default; ``group_commit_max_events`` is set to N so they form
one promotion):

- consumer: append the events, time the consumer applying and promoting
  them (existence check / id lookup, update, digest, publish, promote);
- raw: open a copy of the same base collection, ``update`` the same ids with
  the same metadata changes (ids known up front), close;
- old design: copy the whole collection in, open, the same update, close,
  copy the whole collection out (local disk; the real cycle also went over
  the network and took about 19 s).

Goals (issue 9): consumer >= 0.8 x raw and >= 10 x the old design.

    python -m bench.updates [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import shutil
from functools import partial
from typing import Any

from bench._common import (
    CACHE_DIR,
    COLLECTION,
    base_dir,
    bench_config,
    consumer_batch,
    copy_base,
    ensure_bases,
    label_updates,
    metadata_updates,
    old_design_cycle,
    print_table,
    profiled,
    quiet,
    ratio,
    raw_cycle,
    raw_update,
    repeated,
    rig_copy,
    word_rows,
    write_results,
)

NAME = "updates"
RAW_GOAL = 0.8
OLD_GOAL = 10.0
FULL_CELLS = [(70_000, 384), (35_000, 1536), (70_000, 1536)]
QUICK_CELLS = [(2_000, 64)]


def run_cell(
    size: int, dim: int, kind: str, events: int, profile: bool
) -> dict[str, Any]:
    """One (base, kind) measurement."""
    rows = word_rows(size)
    make = label_updates if kind == "label_update" else metadata_updates
    payloads, ids, changes = make(rows, events)
    work = CACHE_DIR / "runs" / f"{NAME}-{size}x{dim}-{kind}"
    config = bench_config(group_commit_max_events=events)
    top: list[dict[str, Any]] = []
    with rig_copy(size, dim, work / "rig", config) as rig:
        if profile:
            rig.append(payloads)
            outcomes: list[Any] = []
            seconds, top = profiled(
                lambda: outcomes.extend(rig.consumer.catch_up([COLLECTION]))
            )
            promotions = len(outcomes)
            published = sum(o.bytes_published for o in outcomes)
            phases: dict[str, float] = {}
        else:
            run = consumer_batch(rig, payloads)
            seconds, promotions = run.seconds, len(run.outcomes)
            published, phases = run.bytes_published, run.phases
    copy = copy_base(size, dim, work / "raw")
    raw_s = raw_cycle(copy, lambda c: raw_update(c, ids, changes))
    old_s = old_design_cycle(
        base_dir(size, dim), work / "old", lambda c: raw_update(c, ids, changes)
    )
    shutil.rmtree(work, ignore_errors=True)
    rate, raw_rate, old_rate = events / seconds, events / raw_s, events / old_s
    return {
        "base_records": size,
        "dimension": dim,
        "kind": kind,
        "events": events,
        "records_updated": len(ids),
        "promotions": promotions,
        "consumer_seconds": round(seconds, 3),
        "raw_seconds": round(raw_s, 3),
        "old_design_seconds": round(old_s, 3),
        "consumer_events_per_s": round(rate, 1),
        "raw_events_per_s": round(raw_rate, 1),
        "old_design_events_per_s": round(old_rate, 1),
        "ratio_vs_raw": round(ratio(rate, raw_rate), 3),
        "ratio_vs_old_design": round(ratio(rate, old_rate), 2),
        "goal_vs_raw_met": ratio(rate, raw_rate) >= RAW_GOAL,
        "goal_vs_old_met": ratio(rate, old_rate) >= OLD_GOAL,
        "bytes_published": published,
        "consumer_phases_seconds": phases,
        "profile_top": top,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the cells, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--profile", action="store_true", help="cProfile the consumer")
    parser.add_argument("--cells", help="size x dim list, e.g. 70000x384")
    parser.add_argument("--events", type=int, help="events per batch (default 1000)")
    parser.add_argument("--kinds", default="label_update,metadata_update")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per cell; the median is kept"
    )
    args = parser.parse_args(argv)
    quiet()
    cells = QUICK_CELLS if args.quick else FULL_CELLS
    if args.cells:
        cells = [tuple(int(x) for x in c.split("x")) for c in args.cells.split(",")]  # type: ignore[misc]
    events = args.events or (200 if args.quick else 1000)
    rows = []
    for size, dim in cells:
        ensure_bases([size], dim)
        for kind in args.kinds.split(","):
            rows.append(
                repeated(
                    partial(run_cell, size, dim, kind, events, args.profile),
                    args.repeat,
                    "ratio_vs_raw",
                )
            )
            _print(rows[-1:], f"{NAME}: {size}x{dim} {kind}")
            write_results(
                NAME
                + ("_quick" if args.quick else "")
                + ("_profile" if args.profile else ""),
                {
                    "quick": args.quick,
                    "method": __doc__,
                    "group_commit_max_events": events,
                    "results": rows,
                },
                key=("base_records", "dimension", "kind"),
            )
    _print(rows, f"Updates, {events} events per batch: consumer vs raw vs old design")
    return {"results": rows}


def _print(rows: list[dict[str, Any]], title: str) -> None:
    print_table(
        title,
        [
            "base",
            "dim",
            "kind",
            "events",
            "records",
            "consumer ev/s",
            "raw ev/s",
            "old ev/s",
            "vs raw",
            "range",
            "goal 0.8",
            "vs old",
            "goal 10x",
            "MB published",
        ],
        [
            [
                r["base_records"],
                r["dimension"],
                r["kind"],
                r["events"],
                r["records_updated"],
                r["consumer_events_per_s"],
                r["raw_events_per_s"],
                r["old_design_events_per_s"],
                r["ratio_vs_raw"],
                f"{r.get('ratio_vs_raw_min', '')}-{r.get('ratio_vs_raw_max', '')}",
                "met" if r["goal_vs_raw_met"] else "NOT met",
                r["ratio_vs_old_design"],
                "met" if r["goal_vs_old_met"] else "NOT met",
                r["bytes_published"] / 1e6,
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    main()
