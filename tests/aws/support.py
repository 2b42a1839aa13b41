"""Helpers shared by the AWS tests: a manual clock, an API call log, events,
and client wrappers that inject failures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from journal.events import NewEvent, SnapshotRequest

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


class ManualClock:
    """Stands still until a test moves it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class CallLog:
    """Every AWS API call made by the clients it is attached to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.*.*", self.record)

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("provide-client-params.*.*", self.record)

    def record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def counts(self) -> Counter[str]:
        return Counter(self.names())

    def clear(self) -> None:
        self.calls.clear()


def event(
    collection: str = "lines", key: str | None = None, reason: str = ""
) -> NewEvent:
    """A small event; ``reason`` tells events apart."""
    return NewEvent(
        collection=collection,
        payload=SnapshotRequest(reason=reason),
        idempotency_key=key,
        producer="tests",
    )


def client_error(code: str, operation: str, **extra: Any) -> ClientError:
    """A ClientError as botocore raises it for ``code``."""
    response: Any = {"Error": {"Code": code, "Message": f"injected {code}"}, **extra}
    return ClientError(response, operation)


class Interposer:
    """A client proxy that lets a test run code around chosen operations.

    ``around[name]`` receives the real method and the call's keyword
    arguments and returns what the caller sees.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.around: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        hook = self.around.get(name)
        if hook is None:
            return real
        return lambda **kwargs: hook(real, **kwargs)
