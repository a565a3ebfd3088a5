"""Attributing probe samples from nginx's X-Lab-Upstream, on synthetic samples: no Docker, no network."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lab.analysis.attribution import (
    AddressBook,
    AttributedProbe,
    attribute,
    attribute_all,
    upstream_addresses,
)
from lab.analysis.judge import judge_samples
from lab.analysis.summary import summarize
from lab.model import ErrorClass, Instance, Judge, Sample

V1_1, V1_2, V2_1, V2_2 = Instance("v1", 1), Instance("v1", 2), Instance("v2", 1), Instance("v2", 2)
ADDRESS = {V1_1: "10.0.0.2:8000", V1_2: "10.0.0.3:8000", V2_1: "10.0.0.4:8000", V2_2: "10.0.0.5:8000"}


@pytest.fixture
def book() -> AddressBook:
    book = AddressBook()
    for inst, address in ADDRESS.items():
        book.add(address, inst, since=10.0)
    return book


def sample(
    seq: int, upstream: str | None, status: int | None = 200, *, at: float = 20.0, **fields: Any
) -> Sample:
    error = None
    if status is None:
        error = ErrorClass.TIMEOUT
    elif status >= 500:
        error = ErrorClass.HTTP_5XX
    return Sample(seq, at, at, at + 0.002, status, error=error, upstream=upstream, **fields)


def via(*instances: Instance) -> str:
    return ", ".join(ADDRESS[i] for i in instances)


# -- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "addresses"),
    [
        (None, ()),
        ("", ()),
        ("10.0.0.2:8000", ("10.0.0.2:8000",)),
        ("10.0.0.2:8000, 10.0.0.3:8000", ("10.0.0.2:8000", "10.0.0.3:8000")),
        # `:` separates upstream groups after an internal redirect; the last server answered.
        ("10.0.0.2:8000, 10.0.0.3:8000 : 10.0.0.4:8000", ("10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000")),
        ("app", ("app",)),  # no live server: nginx names the group
        ("[fd00::2]:8000, 10.0.0.3:8000", ("[fd00::2]:8000", "10.0.0.3:8000")),
    ],
)
def test_upstream_addresses_lists_every_server_tried_in_order(
    header: str | None, addresses: tuple[str, ...]
) -> None:
    assert upstream_addresses(header) == addresses


def test_an_address_reused_by_a_later_instance_is_read_at_the_time_of_the_request() -> None:
    book = AddressBook()
    book.add("10.0.0.2:80", V1_1, since=5.0)
    book.add("10.0.0.2:80", V2_1, since=9.0)  # v1-1 stopped, its address given to v2-1
    assert book.at("10.0.0.2:80", 4.0) is None  # before anyone held it
    assert book.at("10.0.0.2:80", 5.0) == V1_1
    assert book.at("10.0.0.2:80", 8.99) == V1_1
    assert book.at("10.0.0.2:80", 9.5) == V2_1
    assert book.at("10.0.0.9:80", 9.5) is None
    assert len(book) == 2


# -- one sample ------------------------------------------------------------------------------------


def test_a_good_answer_is_the_last_server_tried(book: AddressBook) -> None:
    got = attribute(sample(1, via(V1_1)), book)
    assert (got.version, got.instance) == ("v1", "app-v1-1")
    # nginx retried past a refusing v2 instance; v1-2 answered, so the client got v1.
    got = attribute(sample(2, via(V2_1, V1_2)), book)
    assert (got.version, got.instance) == ("v1", "app-v1-2")


def test_the_apps_own_headers_win(book: AddressBook) -> None:
    own = sample(1, via(V1_1), version="v2", instance="app-v2-1")
    assert attribute(own, book) is own
    # An app that names its instance but not its version keeps its instance name.
    named = attribute(sample(2, via(V2_2), instance="pod-7"), book)
    assert (named.version, named.instance) == ("v2", "pod-7")


@pytest.mark.parametrize(
    ("tried", "version", "instance"),
    [
        ((V2_1,), "v2", "app-v2-1"),  # the one server refused: nginx answers 502, v2's failure
        ((V2_1, V2_2), "v2", "app-v2-2"),  # retried within v2, both failed
        ((V1_1, V1_2), "v1", "app-v1-2"),  # a stopping v1 fleet: not v2's doing
        ((V1_1, V2_1), None, None),  # reached both versions: nobody's alone, stays unattributed
    ],
)
@pytest.mark.parametrize("then", ["", ", app"])  # ", app": then no live server was left to try
def test_a_proxy_failure_is_blamed_only_when_every_server_tried_was_of_one_version(
    book: AddressBook, tried: tuple[Instance, ...], version: str | None, instance: str | None, then: str
) -> None:
    got = attribute(sample(1, via(*tried) + then, 502), book)
    assert (got.version, got.instance, got.error) == (version, instance, ErrorClass.HTTP_5XX)


@pytest.mark.parametrize(
    "upstream",
    [
        None,  # a probe timeout: no answer, no header
        "app",  # no live server
        "10.9.9.9:8000",  # an address no instance of this run held
        f"{ADDRESS[V2_1]}, 10.9.9.9:8000",  # partly unknown: the unknown one may be v1
    ],
)
def test_a_failure_nothing_is_known_about_stays_unattributed(book: AddressBook, upstream: str | None) -> None:
    failure = sample(1, upstream, None if upstream is None else 502)
    assert attribute(failure, book) is failure


def test_an_address_is_looked_up_at_the_time_the_request_was_sent() -> None:
    book = AddressBook()
    book.add("10.0.0.2:80", V1_1, since=5.0)
    book.add("10.0.0.2:80", V2_1, since=9.0)
    assert attribute(sample(1, "10.0.0.2:80", at=6.0), book).version == "v1"
    assert attribute(sample(2, "10.0.0.2:80", at=9.1), book).version == "v2"
    unsent = Sample(3, 9.2, None, None, error=ErrorClass.SATURATED, upstream=None)
    assert attribute(unsent, book) is unsent


# -- what the attribution changes downstream ------------------------------------------------------


def canary_window(book: AddressBook) -> list[Sample]:
    """A judged canary window of an app with no version header: v2 answers 100 requests well, while a
    v1 instance being replaced makes nginx answer 6 requests with 502 (every try on v1)."""
    good = [sample(i, via(V2_1 if i % 2 else V2_2), at=20 + i / 100) for i in range(100)]
    v1_502 = [sample(200 + i, via(V1_1, V1_2), 502, at=21 + i / 100) for i in range(6)]
    return attribute_all(good + v1_502, book)


def test_the_judge_no_longer_blames_v2_for_v1s_failures(book: AddressBook) -> None:
    window = canary_window(book)
    assert judge_samples(window, Judge("v2", max_error_rate=0.01)).passed
    # Before, nginx's 502s named no version (only the sample app's own answers did), so each counted
    # against v2 and failed the same window.
    raw = [dataclasses.replace(s, version=None, instance=None) if s.error else s for s in window]
    verdict = judge_samples(raw, Judge("v2", max_error_rate=0.01))
    assert not verdict.passed and "(6 of 106)" in verdict.reason


def test_the_judge_counts_502s_that_reached_v2_and_still_fails_closed_on_the_unknown(
    book: AddressBook,
) -> None:
    good = [sample(i, via(V2_1), at=20 + i / 100) for i in range(100)]
    v2_502 = [sample(300 + i, via(V2_1, V2_2), 502) for i in range(3)]
    timeouts = [sample(400 + i, None, None) for i in range(2)]
    mixed = [sample(500, via(V1_1, V2_1), 502)]
    window = attribute_all(good + v2_502 + timeouts + mixed, book)
    verdict = judge_samples(window, Judge("v2", max_error_rate=0.06))
    # v2's own 3 (now answers of v2), plus the 3 nothing can pin on one version: 6 of 106.
    assert (verdict.answers, verdict.errors) == (103, 6)
    assert verdict.passed and "(6 of 106 failed)" in verdict.reason


def test_versions_seen_mixed_window_and_blast_radius_work_for_an_app_without_headers(
    book: AddressBook,
) -> None:
    before = [sample(i, via(V1_1), at=20 + i / 100) for i in range(50)]
    after = [sample(50 + i, via(V2_1), at=20.5 + i / 100) for i in range(50)]
    straggler = [sample(100, via(V1_2), at=20.7)]  # v1 answered once more after v2 had
    hurt = [sample(101, via(V2_2), 502, at=20.8)]
    analysis = summarize(attribute_all(before + after + straggler + hurt, book), [], target_rate=100)
    assert analysis.versions_seen == {"v1": 51, "v2": 50}
    assert analysis.flip_flops == 1 and analysis.mixed_window_ms > 0
    assert (analysis.new_answers, analysis.blast_radius) == (51, 1)


class ListProbe:
    def __init__(self, batches: list[list[Sample]], rest: list[Sample]) -> None:
        self.batches, self.rest = batches, rest
        self.error: str | None = None
        self.started_at: float | None = None

    def start(self) -> None:
        self.started_at = 7.5

    def new_samples(self) -> list[Sample]:
        return self.batches.pop(0) if self.batches else []

    def stop(self) -> list[Sample]:
        return self.rest


def test_an_attributed_probe_attributes_what_streams_and_what_stop_returns(book: AddressBook) -> None:
    inner = ListProbe([[sample(1, via(V1_1))]], [sample(1, via(V1_1)), sample(2, via(V2_1))])
    probe = AttributedProbe(inner, book)
    assert probe.started_at is None
    probe.start()
    assert probe.started_at == 7.5 and probe.error is None
    assert [s.version for s in probe.new_samples()] == ["v1"]
    assert [s.version for s in probe.stop()] == ["v1", "v2"]
    inner.error = "boom"
    assert probe.error == "boom"


# -- the runner fills the book and hands out attributed samples -----------------------------------


def test_the_runner_learns_each_instances_address_and_attributes_the_record(monkeypatch: Any) -> None:
    from test_runner import FakeClock, Harness

    import lab.targets.fleet.target
    from lab.model import AppSpec

    monkeypatch.setattr(lab.targets.fleet.target, "time", FakeClock())
    lab_ = Harness()
    # The fake runtime gives v<N>-<slot> the address 10.<N>.0.<slot>; v2 runs a user image on port 8000.
    lab_.probe_samples.extend(
        [
            Sample(0, 5000.0, 5000.0, 5000.01, 200, upstream="10.1.0.1:8080"),
            Sample(1, 5000.1, 5000.1, 5000.11, 200, upstream="10.1.0.2:8080, 10.2.0.2:8000"),
            Sample(2, 5000.2, 5000.2, 5000.21, 502, error=ErrorClass.HTTP_5XX, upstream="10.2.0.1:8000"),
            Sample(3, 5000.3, 5000.3, 5000.31, 200, upstream="10.2.0.1:8080"),  # wrong port: unknown
        ]
    )
    v2_app = AppSpec("shop:1.5", 8000, "/ready")
    record = lab_.run(v2_app=v2_app)
    assert record.status == "completed", record.error
    got = [(s.version, s.instance) for s in record.samples]
    assert got == [("v1", "app-v1-1"), ("v2", "app-v2-2"), ("v2", "app-v2-1"), (None, None)]
    assert lab_.rt.preflight_images == ["deploylab/app:v1", "shop:1.5"]
    assert {image for image, _ in lab_.rt.started.values()} == {"deploylab/app:v1", "shop:1.5"}
    switch = lab_.rt.applied[-1]
    assert "server app-v2-1:8000" in switch and "v2 /ready;" in switch and "v2 8000;" in switch
