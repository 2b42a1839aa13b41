"""A parked and skipped event: the consumer moves on, and a rebuild from the
journal equals the live collection (DESIGN section 8)."""

from __future__ import annotations

from replay_rig import WORDS, Rig, label, word_records

from journal.events import DeltaMerge, EventParked
from pipeline.parking import skip_event
from replay.plan import EMPTY, Target
from replay.rebuild import run_rebuild


def test_rebuild_after_a_skip_equals_the_consumer_that_skipped(rig: Rig) -> None:
    rig.delta(word_records(1))
    lost = rig.delta(word_records(2))
    assert isinstance(lost.payload, DeltaMerge)
    rig.objects.delete(lost.payload.key)
    rig.append(label(1, 1, 1, valid_labels=["TAX"]))
    consumer = rig.consumer()

    consumer.catch_up()
    assert consumer.applied_seq(WORDS) == 1
    parks = [e for e in rig.journal.read(WORDS) if isinstance(e.payload, EventParked)]
    assert [park.payload.parked_seq for park in parks] == [2]  # type: ignore[union-attr]

    rig.journal.append(skip_event(WORDS, 2, "delta lost", producer="operator"))
    rig.delta(word_records(3, lines=1, words=2))
    consumer.catch_up()
    live = rig.shared.live_manifest(WORDS)
    assert live is not None and live.applied_seq == rig.journal.head(WORDS)

    result = run_rebuild(
        rig.plan(Target(), base=EMPTY),
        rig.rebuilder(),
        rig.tmp / "out",
        scratch_root=rig.tmp / "scratch",
    )

    assert result.built.skipped == [2]
    assert result.built.digest.hexdigest == live.digest
    assert result.built.digest.count == 6 + 2
