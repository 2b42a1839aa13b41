"""Shared pieces of the benchmarks: data, cached base collections, a local
consumer rig, timing and the JSON/table output.

Data: texts and metadata of real CORD receipts (the dataset under
``../shared/data/receipts/cord`` when present, else the samples shipped in
the package), repeated with new image ids to reach the wanted size, with
synthetic float32 vectors of the wanted dimension (seeded, so every run
builds the same records).

Base collections are expensive (70k x 1536-d takes minutes to add), so each
(size, dimension) is built once under ``bench/.cache`` together with a
*prepared rig*: a shared store whose live version holds the base records,
and a warm consumer working copy. Every run copies the prepared rig, so runs
never change the cache.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from chroma_journal.demo import read_receipts
from chroma_journal.demo.model import Receipt
from journal.deltas import DeltaRecords, write_delta
from journal.events import DeltaMerge, LabelUpdate, MetadataUpdate, NewEvent
from journal.ids import word_id_of
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.chroma import PAGE_SIZE, RecordPage, open_collection
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.digest import RecordHashes
from pipeline.lease_local import LocalLease
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS", BENCH_DIR / "results"))
CACHE_DIR = Path(os.environ.get("BENCH_CACHE", BENCH_DIR / ".cache"))
SHARED_CORD = BENCH_DIR.parent.parent / "shared" / "data" / "receipts" / "cord"
COLLECTION = "words"
SPACE = "cosine"
BENCH_NAMESPACE = uuid.UUID("6b1e2a52-6f43-4f1c-9d0e-8a3b7c2d1e00")
#: Receipts used for base collections; deltas take receipts after these.
DELTA_RECEIPT_OFFSET = 1_000_000

console = Console(width=max(160, Console().width))


# -- machine and results -------------------------------------------------------


def machine() -> dict[str, Any]:
    """What ran the benchmark: cores, CPU model, memory, versions."""
    import chromadb

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "chromadb": chromadb.__version__,
    }


def write_results(
    name: str, payload: dict[str, Any], key: Sequence[str] | None = None
) -> Path:
    """Write ``bench/results/<name>.json`` with the machine and date.

    With ``key``, rows of an earlier file whose key this run did not measure
    are kept (so the matrix can be run in parts); every row carries the
    time it was measured.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    path = RESULTS_DIR / f"{name}.json"
    rows = [
        {**row, "measured_at": row.get("measured_at", now)}
        for row in payload["results"]
    ]
    if key is not None and path.exists():
        fresh = {tuple(row[k] for k in key) for row in rows}
        earlier = json.loads(path.read_text()).get("results", [])
        kept = [r for r in earlier if tuple(r.get(k) for k in key) not in fresh]
        rows = sorted(kept + rows, key=lambda r: tuple(r[k] for k in key))
    document = {
        "benchmark": name.removesuffix("_quick"),
        "date": now,
        "machine": machine(),
        **payload,
        "results": rows,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    console.print(f"results written to {path}")
    return path


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Print rows as a rich table."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, 0 when the denominator is 0."""
    return numerator / denominator if denominator else 0.0


def repeated(
    measure: Callable[[], dict[str, Any]], times: int, key: str
) -> dict[str, Any]:
    """Run ``measure`` ``times`` times and keep the run whose ``key`` is the
    median, with every run's ``key`` and their spread alongside: these
    machines are noisy, and one run of a cell is not a figure."""
    runs = [measure() for _ in range(max(1, times))]
    runs.sort(key=lambda run: float(run[key]))
    chosen = dict(runs[len(runs) // 2])
    chosen["repeats"] = len(runs)
    chosen[f"{key}_runs"] = [run[key] for run in runs]
    chosen[f"{key}_min"] = runs[0][key]
    chosen[f"{key}_max"] = runs[-1][key]
    return chosen


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


# -- realistic records -----------------------------------------------------------


@cache
def receipts() -> tuple[Receipt, ...]:
    """The receipts whose texts and metadata the benchmarks repeat."""
    source = SHARED_CORD if SHARED_CORD.is_dir() else None
    found = tuple(r for r in read_receipts(cord_dir=source) if r.lines)
    if not found:
        raise RuntimeError("no receipts found for the benchmark data")
    return found


@dataclass(frozen=True)
class WordRow:
    """One word record without its vector."""

    id: str
    document: str
    metadata: dict[str, str | int | float | bool]
    image_id: str
    receipt_id: int
    line_id: int
    word_id: int


def receipt_rows(index: int) -> list[WordRow]:
    """The word records of the ``index``-th repeated receipt: the texts and
    metadata of a real receipt under a new image id."""
    pool = receipts()
    receipt = pool[index % len(pool)]
    image_id = str(uuid.uuid5(BENCH_NAMESPACE, f"{index}/{receipt.name}"))
    rows: list[WordRow] = []
    for line in receipt.lines:
        for word in line.words:
            metadata = dict(receipt.word_metadata(line, word))
            metadata["image_id"] = image_id
            rows.append(
                WordRow(
                    id=word_id_of(
                        image_id, receipt.receipt_id, line.line_id, word.word_id
                    ),
                    document=word.text,
                    metadata=metadata,
                    image_id=image_id,
                    receipt_id=receipt.receipt_id,
                    line_id=line.line_id,
                    word_id=word.word_id,
                )
            )
    return rows


def word_rows(count: int, first_receipt: int = 0) -> list[WordRow]:
    """``count`` word records from consecutive repeated receipts."""
    rows: list[WordRow] = []
    index = first_receipt
    while len(rows) < count:
        rows.extend(receipt_rows(index))
        index += 1
    return rows[:count]


def vectors(count: int, dim: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Synthetic float32 vectors (seeded)."""
    rng = np.random.default_rng([dim, seed])
    return rng.standard_normal((count, dim), dtype=np.float32)


def records_of(rows: Sequence[WordRow], dim: int, seed: int) -> DeltaRecords:
    """Delta records for ``rows`` with synthetic vectors."""
    return DeltaRecords(
        ids=[row.id for row in rows],
        embeddings=vectors(len(rows), dim, seed),
        documents=[row.document for row in rows],
        metadatas=[dict(row.metadata) for row in rows],
    )


def delta_records(size: int, dim: int, serial: int) -> DeltaRecords:
    """A delta of ``size`` new word records (``serial`` picks which)."""
    first = DELTA_RECEIPT_OFFSET + serial * (size // 5 + 10)
    return records_of(word_rows(size, first), dim, seed=1_000_000 + serial)


# -- cached base collections ---------------------------------------------------


def base_dir(size: int, dim: int) -> Path:
    """Cache folder of the ChromaDB directory holding ``size`` base words."""
    return CACHE_DIR / f"base-{size}x{dim}"


def ensure_bases(sizes: Sequence[int], dim: int) -> None:
    """Build every missing base collection of ``dim``, growing one directory
    and snapshotting it at each size (so 10k, 35k and 70k cost one 70k
    build)."""
    missing = sorted(s for s in set(sizes) if not (base_dir(s, dim) / "done").exists())
    if not missing:
        return
    built = [s for s in sorted(_cached_sizes(dim)) if s < missing[0]]
    start = built[-1] if built else 0
    work = CACHE_DIR / f".grow-{dim}"
    shutil.rmtree(work, ignore_errors=True)
    if start:
        shutil.copytree(base_dir(start, dim), work, ignore=_ignore_markers)
    else:
        work.mkdir(parents=True)
    rows = word_rows(max(missing))
    for target in missing:
        began = time.monotonic()
        _add_rows(work, rows[start:target], dim, start)
        console.print(
            f"base {target}x{dim}: added {target - start} in "
            f"{time.monotonic() - began:.1f} s"
        )
        _freeze_base(work, target, dim)
        start = target
    shutil.rmtree(work, ignore_errors=True)


def _cached_sizes(dim: int) -> list[int]:
    sizes = []
    for path in CACHE_DIR.glob(f"base-*x{dim}"):
        if (path / "done").exists():
            sizes.append(int(path.name[5:].split("x")[0]))
    return sizes


def _ignore_markers(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n in {"done", "hashes.bin"}]


def _add_rows(path: Path, rows: Sequence[WordRow], dim: int, offset: int) -> None:
    with open_collection(path, COLLECTION, space=SPACE) as collection:
        for start in range(0, len(rows), PAGE_SIZE):
            chunk = rows[start : start + PAGE_SIZE]
            records = records_of(chunk, dim, seed=offset + start)
            collection.upsert(
                RecordPage(
                    ids=records.ids,
                    embeddings=records.embeddings,
                    documents=list(records.documents),
                    metadatas=list(records.metadatas),
                )
            )


def _freeze_base(work: Path, size: int, dim: int) -> None:
    target = base_dir(size, dim)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work, target)
    began = time.monotonic()
    scan = target.parent / f".scan-{size}x{dim}"
    shutil.rmtree(scan, ignore_errors=True)
    shutil.copytree(target, scan)
    with open_collection(scan, COLLECTION, space=SPACE) as collection:
        RecordHashes.scan(collection).save(target / "hashes.bin")
    shutil.rmtree(scan)
    console.print(f"base {size}x{dim}: hashed in {time.monotonic() - began:.1f} s")
    (target / "done").write_text("ok\n")


def base_hashes(size: int, dim: int) -> RecordHashes:
    """The cached base's record hashes; hashed again when the cached file is
    of an older format."""
    path = base_dir(size, dim) / "hashes.bin"
    try:
        return RecordHashes.load(path)
    except (OSError, ValueError):
        began = time.monotonic()
        scan = path.parent.parent / f".scan-{size}x{dim}"
        shutil.rmtree(scan, ignore_errors=True)
        copy_base(size, dim, scan)
        with open_collection(scan, COLLECTION, space=SPACE) as collection:
            hashes = RecordHashes.scan(collection)
        shutil.rmtree(scan)
        hashes.save(path)
        console.print(
            f"base {size}x{dim}: re-hashed in {time.monotonic() - began:.1f} s"
        )
        return hashes


def copy_base(size: int, dim: int, dest: Path) -> Path:
    """A private writable copy of a base collection's ChromaDB directory."""
    shutil.copytree(base_dir(size, dim), dest, ignore=_ignore_markers)
    return dest


def dir_bytes(path: Path) -> int:
    """Total bytes of the regular files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- the consumer rig ------------------------------------------------------------


def bench_config(**overrides: Any) -> ConsumerConfig:
    """The shipped consumer defaults, except no linger (throughput runs
    append everything before they start the clock) and no gc grace."""
    values: dict[str, Any] = {"group_commit_max_seconds": 0.0}
    values.update(overrides)
    return ConsumerConfig(**values)


@dataclass
class Rig:
    """A local journal, object store, shared store and consumer."""

    root: Path
    config: ConsumerConfig
    after_promote: Any = None
    journal: SQLiteJournal = field(init=False)
    objects: LocalObjectStore = field(init=False)
    shared: SharedStore = field(init=False)
    consumer: Consumer = field(init=False)

    def __post_init__(self) -> None:
        self.journal = SQLiteJournal(self.root / "journal.sqlite3")
        self.objects = LocalObjectStore(self.root / "objects")
        self.shared = SharedStore(self.root / "shared")
        self._status = SQLiteStatusStore(self.root / "status.sqlite3")
        self.consumer = Consumer(
            self.journal,
            self.objects,
            self.shared,
            self.root / "staging",
            LocalLease(self.root / "leases"),
            self._status,
            self.config,
            owner="bench",
            after_promote=self.after_promote,
        )

    def append(self, payloads: Sequence[Any]) -> None:
        """Append payloads to the collection, 500 per transaction."""
        events = [
            NewEvent(collection=COLLECTION, payload=p, producer="bench")
            for p in payloads
        ]
        for start in range(0, len(events), 500):
            self.journal.append_batch(events[start : start + 500])

    def write_delta(self, records: DeltaRecords) -> DeltaMerge:
        """Upload a delta (not timed: the producer's cost)."""
        scratch = self.root / "producer"
        scratch.mkdir(exist_ok=True)
        return write_delta(self.objects, COLLECTION, records, workdir=scratch)

    def live_path(self) -> Path:
        """The live version's directory."""
        return self.shared.live_path(COLLECTION)

    def close(self) -> None:
        """Close the consumer and the SQLite files."""
        self.consumer.close()
        self.journal.close()
        self._status.close()


def _seed(root: Path, size: int, dim: int) -> None:
    """Publish the base collection as the live version (applied_seq 0), then
    warm the working copy with one untimed label update."""
    shared = SharedStore(root / "shared")
    digest = base_hashes(size, dim).digest()
    work = copy_base(size, dim, root / "seed")
    manifest = shared.publish(
        COLLECTION,
        work,
        None,
        applied_seq=0,
        first_seq=None,
        last_seq=None,
        digest=digest.hexdigest,
        record_count=digest.count,
        fencing_token=0,
        writer="bench-seed",
    )
    shared.promote(COLLECTION, manifest, expected_parent=None, fencing_token=0)
    shutil.rmtree(work)
    rig = Rig(root, bench_config())
    try:
        rig.append([label_payload(word_rows(1)[0], "SEED")])
        rig.consumer.catch_up([COLLECTION])
    finally:
        rig.close()


#: Written into a prepared rig's ``done`` marker; a rig with another one is
#: prepared again (its working copy's record-hash file would not load).
RIG_FORMAT = "ok, record hashes 2, checksummed\n"


def prepared_dir(size: int, dim: int) -> Path:
    """Cache folder of the prepared rig for a base size."""
    return CACHE_DIR / f"rig-{size}x{dim}"


def ensure_rig(size: int, dim: int) -> Path:
    """Build (once) the prepared rig of ``size`` x ``dim``."""
    target = prepared_dir(size, dim)
    done = target / "done"
    if done.exists() and done.read_text() == RIG_FORMAT:
        return target
    ensure_bases([size], dim)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    began = time.monotonic()
    _seed(target, size, dim)
    done.write_text(RIG_FORMAT)
    console.print(f"rig {size}x{dim}: prepared in {time.monotonic() - began:.1f} s")
    return target


@contextmanager
def rig_copy(
    size: int,
    dim: int,
    run_dir: Path,
    config: ConsumerConfig | None = None,
    after_promote: Any = None,
) -> Iterator[Rig]:
    """A private copy of the prepared rig, warmed: the first batch of a new
    process re-verifies the working copy's files, and its first metadata
    update builds the receipt index (pipeline/receipt_index.py), so one
    untimed label update and metadata update run first. Removed on exit."""
    source = ensure_rig(size, dim)
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(source, run_dir, symlinks=True, ignore=_ignore_markers)
    rig = Rig(run_dir, config or bench_config(), after_promote)
    try:
        seed = word_rows(1)[0]
        rig.append([label_payload(seed, "WARM"), metadata_payload(seed, -1)])
        rig.consumer.catch_up([COLLECTION])
        yield rig
    finally:
        rig.close()
        remove_run_dir(run_dir)


def remove_run_dir(path: Path) -> None:
    """Delete a tree with read-only parts (published versions)."""
    for directory in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir() and not directory.is_symlink():
            directory.chmod(0o755)
    if path.exists():
        path.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


# -- events ------------------------------------------------------------------------


def label_payload(row: WordRow, label: str = "PRODUCT_NAME") -> LabelUpdate:
    """A label update giving ``row``'s word the label ``label``."""
    return LabelUpdate(
        image_id=row.image_id,
        receipt_id=row.receipt_id,
        line_id=row.line_id,
        word_id=row.word_id,
        valid_labels=[label],
        status="VALID",
        proposed_by="bench",
    )


def metadata_payload(row: WordRow, serial: int) -> MetadataUpdate:
    """A receipt-level metadata update for ``row``'s receipt."""
    return MetadataUpdate(
        image_id=row.image_id,
        receipt_id=row.receipt_id,
        changes={"merchant_name": f"Merchant {serial}", "merchant_category": "food"},
    )


def receipt_heads(rows: Sequence[WordRow]) -> list[WordRow]:
    """The first row of each distinct receipt, in order."""
    seen: set[tuple[str, int]] = set()
    heads = []
    for row in rows:
        key = (row.image_id, row.receipt_id)
        if key not in seen:
            seen.add(key)
            heads.append(row)
    return heads


# -- raw ChromaDB --------------------------------------------------------------------


@contextmanager
def raw_collection(path: Path) -> Iterator[Any]:
    """A plain ChromaDB collection (no project code in the way)."""
    import chromadb
    from chromadb.config import Settings

    client: Any = chromadb.PersistentClient(
        path=str(path.resolve()), settings=Settings(anonymized_telemetry=False)
    )
    try:
        yield client.get_collection(COLLECTION)
    finally:
        client.close()


def raw_upsert(collection: Any, records: DeltaRecords) -> None:
    """Upsert in pages of 5000 (ChromaDB's per-call limit is 5461)."""
    for start in range(0, len(records), PAGE_SIZE):
        end = start + PAGE_SIZE
        collection.upsert(
            ids=records.ids[start:end],
            embeddings=records.embeddings[start:end],
            documents=records.documents[start:end],
            metadatas=records.metadatas[start:end],
        )


def timed(work: Callable[[], object]) -> float:
    """Seconds ``work`` took."""
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


@contextmanager
def captured_phases() -> Iterator[list[dict[str, float]]]:
    """The per-step durations the consumer logs with each promotion."""
    from structlog.testing import capture_logs

    phases: list[dict[str, float]] = []
    with capture_logs() as logs:
        yield phases
    for entry in logs:
        if entry.get("event") == "promotion_complete":
            phases.append(dict(entry.get("durations", {})))


def sum_phases(phases: Sequence[dict[str, float]]) -> dict[str, float]:
    """Total seconds per step over several promotions."""
    total: dict[str, float] = {}
    for one in phases:
        for name, seconds in one.items():
            total[name] = round(total.get(name, 0.0) + seconds, 4)
    return total


def _drop_below_warning(_logger: Any, method: str, event: Any) -> Any:
    import structlog

    if method in {"debug", "info"}:
        raise structlog.DropEvent
    return event


def quiet() -> None:
    """Show only warnings and errors of the project's logs (the consumer
    logs every batch at info)."""
    import structlog

    structlog.configure(
        processors=[
            _drop_below_warning,
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(),
        ]
    )


# -- cached deltas and profiling -------------------------------------------------


def cached_delta(
    rig: Rig, size: int, dim: int, serial: int
) -> tuple[DeltaMerge, DeltaRecords]:
    """Put delta ``serial`` of ``size`` x ``dim`` into the rig's object
    store; the archive is built once and cached (building a 5000 x 1536-d
    delta takes seconds, and it is the producer's cost, not the consumer's)."""
    records = delta_records(size, dim, serial)
    folder = CACHE_DIR / "deltas" / f"{size}x{dim}-{serial}"
    payload_file = folder / "payload.json"
    if payload_file.exists():
        payload = DeltaMerge.model_validate_json(payload_file.read_text())
        rig.objects.put_file(payload.key, folder / "delta.tar.gz")
        return payload, records
    payload = rig.write_delta(records)
    folder.mkdir(parents=True, exist_ok=True)
    rig.objects.get_file(payload.key, folder / "delta.tar.gz")
    payload_file.write_text(payload.model_dump_json())
    return payload, records


def profiled(
    work: Callable[[], object], top: int = 60
) -> tuple[float, list[dict[str, Any]]]:
    """Run ``work`` under cProfile; its seconds and the ``top`` functions by
    cumulative time."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    try:
        work()
    finally:
        profile.disable()
    seconds = time.perf_counter() - began
    stats = pstats.Stats(profile)
    rows: list[dict[str, Any]] = []
    entries = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][3],
        reverse=True,
    )
    for (filename, line, function), (_cc, calls, tottime, cumtime, _) in entries[:top]:
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({function})",
                "calls": calls,
                "tottime": round(tottime, 4),
                "cumtime": round(cumtime, 4),
            }
        )
    return seconds, rows


# -- shared measurements ---------------------------------------------------------


@dataclass
class BatchRun:
    """What one consumer catch-up did."""

    seconds: float
    outcomes: list[Any]
    phases: dict[str, float]

    @property
    def bytes_published(self) -> int:
        """Bytes new in the shared store over the promotions."""
        return sum(o.bytes_published for o in self.outcomes)


def consumer_batch(rig: Rig, payloads: Sequence[Any]) -> BatchRun:
    """Append ``payloads`` (untimed), then time the consumer catching up."""
    rig.append(payloads)
    outcomes: list[Any] = []
    with captured_phases() as phases:
        seconds = timed(lambda: outcomes.extend(rig.consumer.catch_up([COLLECTION])))
    return BatchRun(seconds, outcomes, sum_phases(phases))


def label_updates(
    rows: Sequence[WordRow], count: int
) -> tuple[list[LabelUpdate], list[str], list[dict[str, Any]]]:
    """``count`` label updates of distinct words, with the ids and metadata
    changes a raw ChromaDB ``update`` needs for the same effect."""
    from journal.labels import label_metadata

    chosen = rows[1 : count + 1]  # row 0 is the seed/warm-up word
    payloads = [label_payload(row, "LINE_TOTAL") for row in chosen]
    changes = [dict(label_metadata(p)) for p in payloads]
    return payloads, [row.id for row in chosen], changes


def metadata_updates(
    rows: Sequence[WordRow], count: int
) -> tuple[list[MetadataUpdate], list[str], list[dict[str, Any]]]:
    """``count`` receipt metadata updates (receipts cycle when fewer), with
    the ids and per-id changes of the same effect for a raw update (the
    last change of each receipt wins)."""
    heads = receipt_heads(rows)
    payloads = [metadata_payload(heads[i % len(heads)], i) for i in range(count)]
    final: dict[tuple[str, int], dict[str, Any]] = {}
    for payload in payloads:
        final[(payload.image_id, payload.receipt_id)] = dict(payload.changes)
    ids: list[str] = []
    changes: list[dict[str, Any]] = []
    for row in rows:
        change = final.get((row.image_id, row.receipt_id))
        if change is not None:
            ids.append(row.id)
            changes.append(change)
    return payloads, ids, changes


def raw_update(
    collection: Any, ids: Sequence[str], changes: Sequence[dict[str, Any]]
) -> None:
    """ChromaDB ``update`` in pages of 5000."""
    for start in range(0, len(ids), PAGE_SIZE):
        collection.update(
            ids=list(ids[start : start + PAGE_SIZE]),
            metadatas=[dict(c) for c in changes[start : start + PAGE_SIZE]],
        )


def raw_cycle(path: Path, work: Callable[[Any], None]) -> float:
    """Seconds to open ``path``, run ``work`` on its collection, close."""
    return timed(lambda: _with_raw(path, work))


def _with_raw(path: Path, work: Callable[[Any], None]) -> None:
    with raw_collection(path) as collection:
        work(collection)


def old_design_cycle(source: Path, scratch: Path, work: Callable[[Any], None]) -> float:
    """The previous design's batch: copy the whole collection in ("download"),
    open, apply, close, copy the whole collection out ("upload") and make
    the upload durable, as an upload to S3 is and as the consumer's publish
    is. Local disk copies, no compression and no network: a lower bound on
    its cost."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)

    def cycle() -> None:
        local = scratch / "download"
        shutil.copytree(source, local)
        _with_raw(local, work)
        shutil.copytree(local, scratch / "upload")
        _fsync_tree(scratch / "upload")

    seconds = timed(cycle)
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``."""
    for path in [root, *root.rglob("*")]:
        flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
