"""Which version and instance a probe request reached, from the proxy's own record of it.

The sample app names itself in every answer (``X-App-Version``, ``X-Instance``); a user's own image does
not, and nginx's error pages (a 502 when an instance refused) never do. nginx adds ``X-Lab-Upstream:
$upstream_addr`` to every answer: the address of every server it tried for the request, in order, the
last one being the one whose answer (or failure) the client got. With the instances' addresses on the lab
network, that names the version the request reached.

A failure is blamed on a version only when every server it tried is known and of that one version. When
nothing is known (a probe timeout carries no header; ``$upstream_addr`` is only the upstream's name when
no server was live at all) or the tries span both versions, it stays unattributed, and a canary's Judge
counts it against the version it judges: a gate fails closed.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections.abc import Iterable
from typing import Protocol

from lab.model import Instance, Sample


def upstream_addresses(header: str | None) -> tuple[str, ...]:
    """Every server in an ``$upstream_addr`` value, in the order nginx tried them.

    nginx separates the servers of one upstream group with ``, `` and groups (after an internal
    redirect) with `` : ``: ``"a:80, b:80 : c:80"`` gives ``("a:80", "b:80", "c:80")``. A token that is
    not an address (the group's name when no server was live) is kept: it matches no instance.
    """
    if not header:
        return ()
    tokens = (token.strip() for token in header.replace(" : ", ", ").split(","))
    return tuple(token for token in tokens if token)


class AddressBook:
    """Which instance held an address, since when (on the probe's clock).

    An address freed by a stopped instance may be handed to a new one, so a lookup asks who held it when
    the request was sent. Filled from the runner's start threads, read from its sample feed: locked.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[tuple[float, Instance]]] = {}

    def add(self, address: str, inst: Instance, since: float) -> None:
        with self._lock:
            bisect.insort(self._held.setdefault(address, []), (since, inst))

    def at(self, address: str, when: float) -> Instance | None:
        """The instance that held `address` at `when`; None if none is known to have."""
        with self._lock:
            held = self._held.get(address)
            if not held:
                return None
            i = bisect.bisect_right(held, when, key=lambda entry: entry[0])
            return held[i - 1][1] if i else None

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._held.values())


def reached(sample: Sample, book: AddressBook) -> list[Instance | None]:
    """The instance behind each server nginx tried for `sample` (None where the address is unknown).

    The upstream group's name is no server: nginx appends it when no live server was left to try (`a:80,
    b:80, app`), so a request that failed on a and b and then found none reached a and b only."""
    when = sample.sent if sample.sent is not None else sample.scheduled
    return [book.at(address, when) for address in upstream_addresses(sample.upstream) if ":" in address]


def attribute(sample: Sample, book: AddressBook) -> Sample:
    """`sample` with its version and instance read from its upstream, where the app gave no version.

    A good answer (or an answer the app itself failed) came from the last server tried. A failure is
    blamed only when every server tried is known and all are of one version; otherwise it stays as it is.
    """
    if sample.version is not None or not sample.upstream:
        return sample
    tried = reached(sample, book)
    last = tried[-1] if tried else None
    if last is None:
        return sample
    if sample.server_failure and (None in tried or len({inst.version for inst in tried if inst}) != 1):
        return sample
    return dataclasses.replace(sample, version=last.version, instance=sample.instance or last.name)


def attribute_all(samples: Iterable[Sample], book: AddressBook) -> list[Sample]:
    return [attribute(s, book) for s in samples]


class _Probe(Protocol):
    @property
    def error(self) -> str | None: ...

    started_at: float | None

    def start(self) -> None: ...
    def new_samples(self) -> list[Sample]: ...
    def stop(self) -> list[Sample]: ...


class AttributedProbe:
    """A probe whose samples come out attributed: every reader (Judge, live view, journal) sees the same."""

    def __init__(self, probe: _Probe, book: AddressBook) -> None:
        self.probe = probe
        self.book = book
        self.started_at: float | None = None  # when tick 0 was due, once started

    @property
    def error(self) -> str | None:
        return self.probe.error

    def start(self) -> None:
        self.probe.start()
        self.started_at = self.probe.started_at

    def new_samples(self) -> list[Sample]:
        return attribute_all(self.probe.new_samples(), self.book)

    def stop(self) -> list[Sample]:
        return attribute_all(self.probe.stop(), self.book)
