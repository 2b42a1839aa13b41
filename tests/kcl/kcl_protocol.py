"""The MultiLangDaemon's side of the protocol, played by a test.

The processor runs inside amazon_kclpy's real message loop
(``kcl.KCLProcess.run``) in a thread; the test writes the daemon's JSON
lines to its input and reads what it writes back: checkpoint requests (which
the test answers, possibly with an error, as the daemon would) and the
``status`` line that ends every action.
"""

from __future__ import annotations

import base64
import io
import json
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from journal.events import Envelope

TIMEOUT = 120.0


class _Input:
    """The processor's stdin: lines the test queued, "" for end of file."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()

    def readline(self) -> str:
        return self.lines.get(timeout=TIMEOUT)


class _Output:
    """The processor's stdout: every non-empty line parsed as JSON."""

    def __init__(self) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                self.messages.put(json.loads(line))
        return len(text)

    def flush(self) -> None:
        pass


@dataclass
class Record:
    """A record as the daemon delivers it."""

    sequence_number: str
    data: bytes
    partition_key: str = "lines"
    sub_sequence_number: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "record",
            "data": base64.b64encode(self.data).decode(),
            "partitionKey": self.partition_key,
            "sequenceNumber": self.sequence_number,
            "subSequenceNumber": self.sub_sequence_number,
            "approximateArrivalTimestamp": 1_700_000_000_000,
        }


def record_of(position: int, envelope: Envelope) -> Record:
    """``envelope`` as the record at shard position ``position``."""
    return Record(str(position), envelope.to_json().encode(), envelope.collection)


@dataclass
class Exchange:
    """What the processor sent back for one action."""

    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def positions(self) -> list[str | None]:
        """The sequence numbers it asked to checkpoint, in order."""
        return [message["sequenceNumber"] for message in self.checkpoints]


class DaemonSide:
    """Drives one processor through ``kcl.KCLProcess``."""

    def __init__(self, processor: Any, shard_id: str = "shardId-000000000001"):
        from amazon_kclpy import kcl

        self.shard_id = shard_id
        self._input = _Input()
        self._output = _Output()
        self.errors = io.StringIO()
        process = kcl.KCLProcess(
            processor,
            input_file=self._input,
            output_file=self._output,
            error_file=self.errors,
        )
        self._thread = threading.Thread(target=process.run, daemon=True)
        self._thread.start()

    def initialize(self, sequence_number: str = "TRIM_HORIZON") -> Exchange:
        return self.call(
            {
                "action": "initialize",
                "shardId": self.shard_id,
                "sequenceNumber": sequence_number,
                "subSequenceNumber": 0,
            }
        )

    def process(
        self, records: Iterable[Record], errors: Iterable[str | None] = ()
    ) -> Exchange:
        message = {
            "action": "processRecords",
            "records": [record.to_json() for record in records],
            "millisBehindLatest": 0,
        }
        return self.call(message, errors)

    def call(
        self, action: dict[str, Any], errors: Iterable[str | None] = ()
    ) -> Exchange:
        """Send ``action``; answer checkpoints with ``errors`` in turn (then
        success) until the processor reports the action done."""
        replies = list(errors)
        exchange = Exchange()
        self._input.lines.put(json.dumps(action) + "\n")
        while True:
            message = self._output.messages.get(timeout=TIMEOUT)
            if message["action"] == "checkpoint":
                exchange.checkpoints.append(message)
                self._reply(message, replies.pop(0) if replies else None)
                continue
            assert message == {"action": "status", "responseFor": action["action"]}
            return exchange

    def close(self) -> None:
        """End of input: the message loop returns."""
        self._input.lines.put("")
        self._thread.join(timeout=TIMEOUT)

    def _reply(self, request: dict[str, Any], error: str | None) -> None:
        reply = {
            "action": "checkpoint",
            "sequenceNumber": request["sequenceNumber"],
            "subSequenceNumber": request["subSequenceNumber"],
            "error": error,
        }
        self._input.lines.put(json.dumps(reply) + "\n")
