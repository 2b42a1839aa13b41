"""Publishing a rebuild as the live version, under the collection lease.

::

    acquire lease (token t) ─▶ read live V ─▶ publish R (parent V, token t)
        ─▶ renew lease ─▶ promote R if live is still V (CAS) ─▶ release

The consumer needs the same lease to promote, so it cannot move the live
version between the read and the swap; if our lease ran out meanwhile and
the consumer promoted, the compare-and-swap refuses and the published
version is removed. After a promotion the consumer continues from the
rebuild's ``applied_seq``: its working copy no longer names the live
version, so it rebuilds that copy from the promoted one.

Known limits, by design for now:

- A rebuild behind the live version (``applied_seq`` lower, e.g. because
  the consumer moved on while the rebuild ran) is promoted too, with a
  ``replay_behind_live`` warning: the consumer then applies the events in
  between again, which is safe because applying is idempotent, but readers
  briefly see the older state. Catching up under the lease before the swap
  is not done.
- The status mirror is not written here; it shows the promoted version
  after the consumer's next batch (``status`` reads the live manifest for
  the applied seq in any case).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import structlog

from pipeline.errors import LeaseUnavailable, PromotionRefused
from pipeline.lease import Lease, LeaseGrant
from pipeline.manifest import Manifest
from pipeline.store import SharedStore
from replay.builder import Built

log = structlog.get_logger(__name__)


class Promoter:
    """Publishes and promotes rebuilds in one shared store."""

    def __init__(
        self,
        shared: SharedStore,
        lease: Lease,
        *,
        owner: str,
        lease_ttl_seconds: float = 60.0,
    ) -> None:
        self._shared = shared
        self._lease = lease
        self._owner = owner
        self._ttl = timedelta(seconds=lease_ttl_seconds)

    def promote(self, built: Built, work_dir: Path) -> Manifest:
        """Publish ``work_dir`` (the closed build, without a manifest) and make
        it live; returns the published manifest."""
        collection = built.collection
        grant = self._acquire(collection)
        try:
            live = self._shared.live_manifest(collection)
            _warn_if_behind(built, live)
            manifest = self._publish(built, work_dir, live, grant)
            self._swap(built, manifest, live, grant)
        finally:
            self._lease.release(grant)
        log.info(
            "replay_promoted",
            collection=collection,
            version=manifest.version,
            applied_seq=manifest.applied_seq,
            replaced=live.version if live else None,
            fencing_token=grant.token,
        )
        return manifest

    def _acquire(self, collection: str) -> LeaseGrant:
        grant = self._lease.acquire(collection, self._owner, self._ttl)
        if grant is None:
            holder = self._lease.current(collection)
            raise LeaseUnavailable(collection, holder.owner if holder else None)
        return grant

    def _publish(
        self, built: Built, work_dir: Path, live: Manifest | None, grant: LeaseGrant
    ) -> Manifest:
        return self._shared.publish(
            built.collection,
            work_dir,
            live,
            applied_seq=built.applied_seq,
            first_seq=built.first_seq,
            last_seq=built.applied_seq if built.first_seq else None,
            digest=built.digest.hexdigest,
            record_count=built.digest.count,
            fencing_token=grant.token,
            writer=self._owner,
        )

    def _swap(
        self,
        built: Built,
        manifest: Manifest,
        live: Manifest | None,
        grant: LeaseGrant,
    ) -> None:
        collection = built.collection
        # Publishing a large collection takes a while; the swap is only ours
        # if the lease still is.
        if self._lease.renew(grant, self._ttl) is None:
            self._shared.remove_version(collection, manifest.version)
            raise PromotionRefused(collection, "the lease expired while publishing")
        self._shared.promote_or_remove(
            collection,
            manifest,
            expected_parent=live.version if live else None,
            fencing_token=grant.token,
        )


def _warn_if_behind(built: Built, live: Manifest | None) -> None:
    if live is not None and live.applied_seq > built.applied_seq:
        log.warning(
            "replay_behind_live",
            collection=built.collection,
            applied_seq=built.applied_seq,
            live_applied_seq=live.applied_seq,
        )
