"""Delta merge: records/s through the consumer against a raw ChromaDB upsert.

For each base size, dimension and delta size, the same delta records are

- appended as ``delta_merge`` events and applied by the consumer, one delta
  per promotion (journal read, delta fetch and unpack, upsert, incremental
  digest, publish of changed files, promotion), and
- upserted with plain ChromaDB into a copy of the same base collection
  (open the client, upsert in pages of 5000, close), one delta at a time.

Both sides start from the same cached base collection. The consumer's
working copy is warm (as in a running consumer). Goal (issue 9): consumer at
0.9 or more of raw ChromaDB.

    python -m bench.delta_merge [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench._common import (
    CACHE_DIR,
    COLLECTION,
    cached_delta,
    captured_phases,
    copy_base,
    ensure_bases,
    print_table,
    profiled,
    quiet,
    ratio,
    raw_collection,
    raw_upsert,
    repeated,
    rig_copy,
    sum_phases,
    timed,
    write_results,
)

NAME = "delta_merge"
GOAL = 0.9
FULL_MATRIX = [
    (10_000, 384),
    (35_000, 384),
    (70_000, 384),
    (35_000, 1536),
    (70_000, 1536),
]
FULL_DELTAS = (250, 5000)
QUICK_MATRIX = [(2_000, 64)]
QUICK_DELTAS = (50, 500)


def reps_for(delta: int, quick: bool) -> int:
    """Deltas applied per cell: enough records to cross ChromaDB's index sync
    threshold (1000 operations) at least once on both sides."""
    if quick:
        return 2
    return 4 if delta < 1000 else 1


def run_cell(
    size: int, dim: int, delta: int, reps: int, profile: bool
) -> dict[str, Any]:
    """One (base size, dimension, delta size) measurement."""
    work = CACHE_DIR / "runs" / f"{NAME}-{size}x{dim}-{delta}"
    consumer_s = 0.0
    published: list[int] = []
    top: list[dict[str, Any]] = []
    with rig_copy(size, dim, work / "rig") as rig:
        deltas = [cached_delta(rig, delta, dim, serial) for serial in range(reps)]
        with captured_phases() as phases:
            for payload, _records in deltas:
                rig.append([payload])

                def apply() -> None:
                    outcomes = rig.consumer.catch_up([COLLECTION])
                    published.extend(o.bytes_published for o in outcomes)
                    if sum(o.records_upserted for o in outcomes) != delta:
                        raise RuntimeError(f"consumer upserted {outcomes}")

                if profile and not top:
                    seconds, top = profiled(apply)
                else:
                    seconds = timed(apply)
                consumer_s += seconds
    raw_open_s, raw_upsert_s = _raw(size, dim, [r for _, r in deltas], work / "raw")
    shutil.rmtree(work, ignore_errors=True)
    records = delta * reps
    raw_s = raw_open_s + raw_upsert_s
    consumer_rate = records / consumer_s
    raw_rate = records / raw_s
    return {
        "base_records": size,
        "dimension": dim,
        "delta_records": delta,
        "deltas": reps,
        "promotions": len(published),
        "consumer_seconds": round(consumer_s, 3),
        "raw_seconds": round(raw_s, 3),
        "raw_open_close_seconds": round(raw_open_s, 3),
        "consumer_records_per_s": round(consumer_rate, 1),
        "raw_records_per_s": round(raw_rate, 1),
        "ratio": round(ratio(consumer_rate, raw_rate), 3),
        "goal": GOAL,
        "goal_met": ratio(consumer_rate, raw_rate) >= GOAL,
        "consumer_phases_seconds": sum_phases(phases),
        "bytes_published_per_promotion": round(sum(published) / max(1, len(published))),
        "profile_top": top,
    }


def _raw(size: int, dim: int, deltas: list[Any], path: Path) -> tuple[float, float]:
    """Seconds to open+close and to upsert, one delta per open, on a copy."""
    shutil.rmtree(path, ignore_errors=True)
    copy_base(size, dim, path)
    open_s = upsert_s = 0.0
    for records in deltas:
        began = time.perf_counter()
        with raw_collection(path) as collection:
            opened = time.perf_counter()
            raw_upsert(collection, records)
            upserted = time.perf_counter()
        closed = time.perf_counter()
        open_s += (opened - began) + (closed - upserted)
        upsert_s += upserted - opened
    shutil.rmtree(path, ignore_errors=True)
    return open_s, upsert_s


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the matrix, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one batch per cell"
    )
    parser.add_argument("--cells", help="size x dim list, e.g. 10000x384,70000x1536")
    parser.add_argument("--deltas", help="delta sizes, e.g. 250,5000")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per cell; the median is kept"
    )
    args = parser.parse_args(argv)
    quiet()
    matrix = QUICK_MATRIX if args.quick else FULL_MATRIX
    if args.cells:
        matrix = [tuple(int(x) for x in c.split("x")) for c in args.cells.split(",")]  # type: ignore[misc]
    sizes: tuple[int, ...] = QUICK_DELTAS if args.quick else FULL_DELTAS
    if args.deltas:
        sizes = tuple(int(x) for x in args.deltas.split(","))
    rows = []
    for size, dim in matrix:
        ensure_bases([size], dim)
        for delta in sizes:
            reps = reps_for(delta, args.quick)
            cell = repeated(
                partial(run_cell, size, dim, delta, reps, args.profile),
                args.repeat,
                "ratio",
            )
            rows.append(cell)
            _print([cell], f"{NAME}: {size}x{dim}, delta {delta}")
            _save(rows, args.quick, args.profile)  # after each cell: runs are long
    _print(rows, "Delta merge: consumer vs raw ChromaDB upsert (records/s)")
    return {"results": rows}


def _save(rows: list[dict[str, Any]], quick: bool, profile: bool) -> None:
    write_results(
        NAME + ("_quick" if quick else "") + ("_profile" if profile else ""),
        {
            "quick": quick,
            "method": (
                "each delta applied as its own promotion; raw side opens a client "
                "on a copy of the same base, upserts the same records, closes; "
                "group_commit_max_seconds=0 (no linger), other settings default"
            ),
            "results": rows,
        },
        key=("base_records", "dimension", "delta_records"),
    )


def _print(rows: list[dict[str, Any]], title: str) -> None:
    print_table(
        title,
        [
            "base",
            "dim",
            "delta",
            "n",
            "consumer r/s",
            "raw r/s",
            "ratio",
            "ratio range",
            "goal 0.9",
            "setup",
            "apply",
            "digest",
            "publish",
            "MB published",
        ],
        [
            [
                r["base_records"],
                r["dimension"],
                r["delta_records"],
                r["deltas"],
                r["consumer_records_per_s"],
                r["raw_records_per_s"],
                r["ratio"],
                f"{r.get('ratio_min', r['ratio'])}-{r.get('ratio_max', r['ratio'])}",
                "met" if r["goal_met"] else "NOT met",
                r["consumer_phases_seconds"].get("setup", 0.0),
                r["consumer_phases_seconds"].get("apply", 0.0),
                r["consumer_phases_seconds"].get("digest", 0.0),
                r["consumer_phases_seconds"].get("publish", 0.0),
                r["bytes_published_per_promotion"] / 1e6,
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    main()
