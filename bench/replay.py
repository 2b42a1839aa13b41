"""Replay: rebuild a collection from empty and from a snapshot, against a raw
ChromaDB ingest of the same final records.

The journal holds N records as deltas of 500 followed by 1000 label
updates. The consumer applies the first half of the deltas (untimed), which
leaves a published version to start from. Then, timed:

- replay from empty: ``replay`` plans a rebuild to the journal head with
  base ``empty`` and builds it (every delta fetched and upserted, labels
  applied, digest computed);
- replay from a snapshot: the same with base ``latest`` (the version at
  the half-way seq, restored with its sha256 checks, then the rest);
- raw: ``add`` the final records (delta records with the labels already in
  their metadata) to an empty ChromaDB collection, in pages of 5000.

    python -m bench.replay [--quick] [--records 10000] [--dim 384]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from bench._common import (
    CACHE_DIR,
    COLLECTION,
    SPACE,
    Rig,
    bench_config,
    label_updates,
    print_table,
    quiet,
    ratio,
    records_of,
    remove_run_dir,
    timed,
    word_rows,
    write_results,
)
from journal.labels import label_metadata
from pipeline.chroma import PAGE_SIZE
from replay.builder import Rebuilder
from replay.plan import Target, plan_rebuild
from replay.sources import StoreVersions

NAME = "replay"
DELTA = 500


def prepare(
    root: Path, records: int, dim: int, labels: int
) -> tuple[list[Any], list[Any]]:
    """Journal with the deltas and labels; the first half applied."""
    rows = word_rows(records)
    rig = Rig(root, bench_config())
    chunks = [
        records_of(rows[i : i + DELTA], dim, seed=i) for i in range(0, records, DELTA)
    ]
    payloads = [rig.write_delta(chunk) for chunk in chunks]
    half = len(payloads) // 2
    rig.append(payloads[:half])
    rig.consumer.catch_up([COLLECTION])
    label_payloads = label_updates(rows, labels)[0]
    rig.append(payloads[half:] + label_payloads)
    rig.close()
    return chunks, label_payloads


def replay_seconds(root: Path, base: str) -> tuple[float, int]:
    """Seconds to build the head state from ``base``; events applied."""
    rig = Rig(root, bench_config())
    try:
        plan = plan_rebuild(
            rig.journal, COLLECTION, Target(), [StoreVersions(rig.shared)], base=base
        )
        dest = root / f"rebuild-{base}"
        built: list[Any] = []
        seconds = timed(
            lambda: built.append(
                Rebuilder(rig.journal, rig.objects).build(
                    plan, dest, scratch=root / "scratch"
                )
            )
        )
        remove_run_dir(dest)
        return seconds, built[0].events_applied
    finally:
        rig.close()


def raw_ingest_seconds(path: Path, chunks: list[Any], labels: list[Any]) -> float:
    """Seconds to add the final records to an empty collection."""
    final = {}
    for payload in labels:
        changes = {k: v for k, v in label_metadata(payload).items() if v is not None}
        final[
            (payload.image_id, payload.receipt_id, payload.line_id, payload.word_id)
        ] = changes

    import chromadb
    from chromadb.config import Settings

    def ingest() -> None:
        client: Any = chromadb.PersistentClient(
            path=str(path), settings=Settings(anonymized_telemetry=False)
        )
        try:
            collection = client.create_collection(
                COLLECTION, metadata={"hnsw:space": SPACE}
            )
            for chunk in chunks:
                metadatas: list[Any] = []
                for metadata in chunk.metadatas:
                    key = (
                        metadata["image_id"],
                        metadata["receipt_id"],
                        metadata["line_id"],
                        metadata["word_id"],
                    )
                    metadatas.append({**metadata, **final.get(key, {})})
                for start in range(0, len(chunk), PAGE_SIZE):
                    collection.add(
                        ids=chunk.ids[start : start + PAGE_SIZE],
                        embeddings=chunk.embeddings[start : start + PAGE_SIZE],
                        documents=chunk.documents[start : start + PAGE_SIZE],
                        metadatas=metadatas[start : start + PAGE_SIZE],
                    )
        finally:
            client.close()

    path.mkdir(parents=True)
    return timed(ingest)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args(argv)
    quiet()
    records, dim, labels = (
        (1000, 64, 200) if args.quick else (args.records, args.dim, 1000)
    )
    root = CACHE_DIR / "runs" / NAME
    remove_run_dir(root)
    root.mkdir(parents=True)
    chunks, label_payloads = prepare(root, records, dim, labels)
    empty_s, empty_events = replay_seconds(root, "empty")
    snap_s, snap_events = replay_seconds(root, "latest")
    raw_s = raw_ingest_seconds(root / "raw", chunks, label_payloads)
    remove_run_dir(root)
    shutil.rmtree(root, ignore_errors=True)
    rows = [
        {
            "mode": mode,
            "records": records,
            "dimension": dim,
            "events_applied": events,
            "seconds": round(seconds, 3),
            "raw_ingest_seconds": round(raw_s, 3),
            "records_per_s": round(records / seconds, 1),
            "raw_records_per_s": round(records / raw_s, 1),
            "ratio_vs_raw": round(ratio(raw_s, seconds), 3),
        }
        for mode, seconds, events in (
            ("from empty", empty_s, empty_events),
            ("from snapshot (half-way version)", snap_s, snap_events),
        )
    ]
    print_table(
        f"Replay of {records}x{dim} ({records // DELTA} deltas + {labels} labels)",
        [
            "mode",
            "events",
            "seconds",
            "raw ingest s",
            "records/s",
            "raw records/s",
            "ratio",
        ],
        [
            [
                r["mode"],
                r["events_applied"],
                r["seconds"],
                r["raw_ingest_seconds"],
                r["records_per_s"],
                r["raw_records_per_s"],
                r["ratio_vs_raw"],
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
