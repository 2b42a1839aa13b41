"""Memory: peak RSS of the consumer against a raw ChromaDB process doing the
same work, each in its own subprocess.

Work on the base collection (default 70k x 1536): one ``delta_merge`` of
5000 new records, then 1000 label updates. The consumer child runs them
through a warm consumer (its rig copy includes one warm-up batch); the raw
child opens a copy of the same base, upserts the same records, updates the
same ids, closes. Peak RSS is ``VmHWM`` from ``/proc/self/status`` (with
``ru_maxrss`` as a cross-check), read at the end of each child.

    python -m bench.memory [--quick] [--cell 70000x1536]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench._common import (
    BENCH_DIR,
    CACHE_DIR,
    bench_config,
    cached_delta,
    consumer_batch,
    copy_base,
    ensure_bases,
    ensure_rig,
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

NAME = "memory"


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size of this process, in MB."""
    hwm = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            hwm = int(line.split()[1]) / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"vmhwm_mb": round(hwm, 1), "ru_maxrss_mb": round(maxrss, 1)}


def child(role: str, size: int, dim: int, delta: int, labels: int) -> dict[str, Any]:
    """The work of one child process; returns its peak RSS."""
    quiet()
    rows = word_rows(size)
    label_payloads, ids, changes = label_updates(rows, labels)
    work = CACHE_DIR / "runs" / f"{NAME}-{role}"
    config = bench_config(group_commit_max_events=labels)
    if role == "consumer":
        with rig_copy(size, dim, work, config) as rig:
            before = peak_rss_mb()
            payload, _ = cached_delta(rig, delta, dim, 0)
            consumer_batch(rig, [payload])
            consumer_batch(rig, label_payloads)
    else:
        from bench._common import delta_records

        records = delta_records(delta, dim, 0)
        path = copy_base(size, dim, work)
        before = peak_rss_mb()

        def apply(collection: Any) -> None:
            raw_upsert(collection, records)
            raw_update(collection, ids, changes)

        raw_cycle(path, apply)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return {"role": role, "before_work": before, **peak_rss_mb()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both children, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--cell", default="70000x1536", help="base size x dim")
    parser.add_argument("--child", choices=["consumer", "raw"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size, dim = (
        (2000, 64) if args.quick else tuple(int(x) for x in args.cell.split("x"))
    )
    delta, labels = (500, 200) if args.quick else (5000, 1000)
    if args.child:
        print(json.dumps(child(args.child, size, dim, delta, labels)))
        return {}
    quiet()
    ensure_bases([size], dim)
    ensure_rig(size, dim)
    results = {}
    for role in ("consumer", "raw"):
        command = [sys.executable, "-m", "bench.memory", "--child", role]
        command += ["--quick"] if args.quick else ["--cell", f"{size}x{dim}"]
        done = subprocess.run(
            command, cwd=BENCH_DIR.parent, capture_output=True, text=True, check=True
        )
        results[role] = json.loads(done.stdout.strip().splitlines()[-1])
    consumer, raw = results["consumer"]["vmhwm_mb"], results["raw"]["vmhwm_mb"]
    row = {
        "base_records": size,
        "dimension": dim,
        "delta_records": delta,
        "label_events": labels,
        "consumer": results["consumer"],
        "raw": results["raw"],
        "consumer_over_raw": round(ratio(consumer, raw), 2),
    }
    print_table(
        f"Peak RSS (MB) on {size}x{dim}: delta of {delta} + {labels} label updates",
        ["process", "peak RSS MB (VmHWM)", "ru_maxrss MB", "peak before work MB"],
        [
            [role, r["vmhwm_mb"], r["ru_maxrss_mb"], r["before_work"]["vmhwm_mb"]]
            for role, r in results.items()
        ],
    )
    write_results(
        f"{NAME}_quick" if args.quick else NAME,
        {"quick": args.quick, "method": __doc__, "results": [row]},
    )
    return row


if __name__ == "__main__":
    main()
