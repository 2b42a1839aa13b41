"""Write amplification: bytes written to the shared store per promotion,
against the old design's full copy of the collection.

On one base collection (default: the largest 1536-d one cached, else
70k x 1536 is built), three promotions, each its own batch:

- a metadata-only batch: ``metadata_update`` events for 100 receipts;
- a label batch: 1000 ``label_update`` events;
- a delta batch: one ``delta_merge`` of 250 new records.

"Bytes published" counts the files a version does not share with its
parent (copied, not hard-linked); the old design uploaded the whole
collection directory every cycle.

    python -m bench.write_amplification [--quick] [--cell 70000x1536]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from bench._common import (
    CACHE_DIR,
    base_dir,
    bench_config,
    cached_delta,
    consumer_batch,
    dir_bytes,
    ensure_bases,
    label_updates,
    metadata_updates,
    print_table,
    quiet,
    ratio,
    rig_copy,
    word_rows,
    write_results,
)

NAME = "write_amplification"


def run(
    size: int, dim: int, labels: int, receipts: int, delta: int
) -> list[dict[str, Any]]:
    """The three promotions on one rig."""
    ensure_bases([size], dim)
    full = dir_bytes(base_dir(size, dim))
    rows = word_rows(size)
    config = bench_config(group_commit_max_events=max(labels, receipts))
    results = []
    with rig_copy(size, dim, CACHE_DIR / "runs" / NAME, config) as rig:
        batches: dict[str, Sequence[Any]] = {
            "metadata_update": metadata_updates(rows, receipts)[0],
            "label_update": label_updates(rows, labels)[0],
            "delta_merge": [cached_delta(rig, delta, dim, 0)[0]],
        }
        for kind, payloads in batches.items():
            batch = consumer_batch(rig, payloads)
            live = dir_bytes(rig.live_path())
            results.append(
                {
                    "base_records": size,
                    "dimension": dim,
                    "batch": kind,
                    "events": len(payloads),
                    "promotions": len(batch.outcomes),
                    "bytes_published": batch.bytes_published,
                    "collection_bytes": live,
                    "old_design_bytes": full,
                    "fraction_of_old_design": round(
                        ratio(batch.bytes_published, full), 4
                    ),
                    "old_design_over_consumer": round(
                        ratio(full, batch.bytes_published), 1
                    ),
                    "seconds": round(batch.seconds, 3),
                }
            )
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--cell", default="70000x1536", help="base size x dim")
    args = parser.parse_args(argv)
    quiet()
    size, dim = (
        (2000, 64) if args.quick else tuple(int(x) for x in args.cell.split("x"))
    )
    labels, receipts, delta = (200, 20, 50) if args.quick else (1000, 100, 250)
    rows = run(size, dim, labels, receipts, delta)
    print_table(
        f"Write amplification on {size}x{dim}: MB written per promotion",
        [
            "batch",
            "events",
            "MB published",
            "MB old design",
            "fraction",
            "old/consumer",
        ],
        [
            [
                r["batch"],
                r["events"],
                r["bytes_published"] / 1e6,
                r["old_design_bytes"] / 1e6,
                r["fraction_of_old_design"],
                r["old_design_over_consumer"],
            ]
            for r in rows
        ],
    )
    write_results(
        f"{NAME}_quick" if args.quick else NAME,
        {"quick": args.quick, "method": __doc__, "results": rows},
    )
    return {"results": rows}


if __name__ == "__main__":
    main()
