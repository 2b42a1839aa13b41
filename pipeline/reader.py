"""Reading the live version of a collection, from a local copy.

ChromaDB over a network file system takes seconds per call, and opening a
directory writes to it, so a reader never opens the shared store: it
resolves the collection link once, copies that version to local disk under
``cache_dir/<collection>/<version-id>`` (checking every file against the
manifest) and opens the copy. A version never changes, so a cached copy
never goes stale; a reader that opened an older version keeps reading it
after the link moves on.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.chroma import chroma_errors, open_client
from pipeline.errors import NoLiveVersion
from pipeline.files import WRITABLE_DIR, remove_tree
from pipeline.manifest import Manifest, copy_version
from pipeline.store import SharedStore


@contextmanager
def open_live(chroma_root: Path, collection: str, cache_dir: Path) -> Iterator[Any]:
    """A ChromaDB collection on a local copy of the live version; the client
    is closed on exit."""
    store = SharedStore(chroma_root)
    source = store.live_path(collection)  # resolved once: the link may move
    manifest = Manifest.read(source)
    local = cached_copy(source, manifest, cache_dir)
    with open_client(local) as client, chroma_errors("get_collection", local):
        yield client.get_collection(collection, embedding_function=None)


def cached_copy(source: Path, manifest: Manifest, cache_dir: Path) -> Path:
    """The local copy of the version at ``source``, made once."""
    target = cache_dir / manifest.collection / manifest.version
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name and renamed, so that concurrent readers
    # never see a half copy; the loser of a race discards its own.
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=".copy-"))
    try:
        copy_version(source, manifest, building)
        building.chmod(WRITABLE_DIR)
        building.rename(target)
    except OSError:
        remove_tree(building)
        if not target.is_dir():
            raise
    except BaseException:
        remove_tree(building)
        raise
    return target


__all__ = ["NoLiveVersion", "cached_copy", "open_live"]
