"""Scaling: cost of one batch as the collection grows (384-d words).

At each base size (10k, 35k, 70k, optionally 200k), two batches through a
warm consumer, each reported by step (setup, apply, digest, publish,
promote, from the consumer's own ``promotion_complete`` timings) next to
the raw ChromaDB time for the same work on a copy of the same base:

- a label batch of 1000 ``label_update`` events;
- a delta batch of one ``delta_merge`` of 250 new records.

Also the size of ``chroma.sqlite3`` (copied on every publish) and of the
whole collection (what the old design copied every cycle).

    python -m bench.scaling [--quick] [--sizes 10000,35000,70000,200000]
"""

from __future__ import annotations

import argparse
import shutil
from typing import Any

from bench._common import (
    CACHE_DIR,
    base_dir,
    bench_config,
    cached_delta,
    consumer_batch,
    copy_base,
    dir_bytes,
    ensure_bases,
    label_updates,
    print_table,
    quiet,
    ratio,
    raw_cycle,
    raw_update,
    raw_upsert,
    rig_copy,
    word_rows,
    write_results,
)

NAME = "scaling"
DIM = 384


def run_size(size: int, dim: int, labels: int, delta: int) -> list[dict[str, Any]]:
    """Both batches at one base size."""
    rows = word_rows(size)
    label_payloads, ids, changes = label_updates(rows, labels)
    work = CACHE_DIR / "runs" / f"{NAME}-{size}x{dim}"
    config = bench_config(group_commit_max_events=labels)
    with rig_copy(size, dim, work / "rig", config) as rig:
        payload, records = cached_delta(rig, delta, dim, 0)
        label_run = consumer_batch(rig, label_payloads)
        delta_run = consumer_batch(rig, [payload])
    raw_path = copy_base(size, dim, work / "raw")
    raw_label = raw_cycle(raw_path, lambda c: raw_update(c, ids, changes))
    raw_delta = raw_cycle(raw_path, lambda c: raw_upsert(c, records))
    shutil.rmtree(work, ignore_errors=True)
    sqlite = (base_dir(size, dim) / "chroma.sqlite3").stat().st_size
    total = dir_bytes(base_dir(size, dim))
    out = []
    for kind, run, raw_s in (
        (f"label_update x{labels}", label_run, raw_label),
        (f"delta_merge {delta}", delta_run, raw_delta),
    ):
        out.append(
            {
                "base_records": size,
                "dimension": dim,
                "batch": kind,
                "consumer_seconds": round(run.seconds, 3),
                "raw_seconds": round(raw_s, 3),
                "consumer_over_raw_time": round(ratio(run.seconds, raw_s), 2),
                "phases_seconds": run.phases,
                "bytes_published": run.bytes_published,
                "sqlite_bytes": sqlite,
                "collection_bytes": total,
            }
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run each size, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--sizes", default="10000,35000,70000")
    args = parser.parse_args(argv)
    quiet()
    sizes = [1000, 3000] if args.quick else [int(s) for s in args.sizes.split(",")]
    dim = 64 if args.quick else DIM
    labels, delta = (200, 50) if args.quick else (1000, 250)
    ensure_bases(sizes, dim)
    rows = [row for size in sizes for row in run_size(size, dim, labels, delta)]
    print_table(
        f"Scaling: seconds per batch by collection size ({dim}-d)",
        [
            "base",
            "batch",
            "consumer s",
            "raw s",
            "x raw",
            "setup",
            "apply",
            "digest",
            "publish",
            "promote",
            "MB published",
            "sqlite MB",
            "collection MB",
        ],
        [
            [
                r["base_records"],
                r["batch"],
                r["consumer_seconds"],
                r["raw_seconds"],
                r["consumer_over_raw_time"],
                r["phases_seconds"].get("setup", 0.0),
                r["phases_seconds"].get("apply", 0.0),
                r["phases_seconds"].get("digest", 0.0),
                r["phases_seconds"].get("publish", 0.0),
                r["phases_seconds"].get("promote", 0.0),
                r["bytes_published"] / 1e6,
                r["sqlite_bytes"] / 1e6,
                r["collection_bytes"] / 1e6,
            ]
            for r in rows
        ],
    )
    write_results(
        f"{NAME}_quick" if args.quick else NAME,
        {"quick": args.quick, "method": __doc__, "results": rows},
        key=("base_records", "batch"),
    )
    return {"results": rows}


if __name__ == "__main__":
    main()
