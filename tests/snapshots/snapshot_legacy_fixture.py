"""The previous system's snapshot layout, built with ChromaDB for tests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from snapshot_rig import COLLECTION

from journal.objectstore import ObjectStore
from pipeline.files import regular_files

LEGACY_VERSION = "2024-11-05T10-30-00"


def build_legacy_collection(path: Path, records: int = 30) -> None:
    """A ChromaDB directory as the previous system wrote it."""
    import chromadb
    from chromadb.config import Settings

    rng = np.random.default_rng(7)
    client = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False)
    )
    try:
        collection = client.create_collection(
            COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        collection.add(
            ids=[
                f"IMAGE#x#RECEIPT#00001#LINE#00001#WORD#{i:05d}" for i in range(records)
            ],
            embeddings=rng.standard_normal((records, 8)).astype(np.float32),
            documents=[f"word {i}" for i in range(records)],
            metadatas=[
                {"text": f"w{i}", "valid_labels": ",TOTAL,"} for i in range(records)
            ],
        )
    finally:
        client.close()


def upload_legacy(source: ObjectStore, chroma_dir: Path, variant: str) -> None:
    """Put ``chroma_dir`` in the old layout: archive or plain file tree."""
    prefix = f"{COLLECTION}/snapshot/timestamped/{LEGACY_VERSION}/"
    source.put_bytes(
        f"{COLLECTION}/snapshot/latest-pointer.txt", f"{LEGACY_VERSION}\n".encode()
    )
    if variant == "tree":
        for relpath in regular_files(chroma_dir):
            source.put_file(prefix + relpath.as_posix(), chroma_dir / relpath)
        return
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(chroma_dir, arcname="chroma")
    source.put_bytes(prefix + "snapshot.tar.gz", buffer.getvalue())
