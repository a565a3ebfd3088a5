"""The probe as a population: which client sends each tick, what each tick asks for, what each client's
request carries, and a stream cut short."""

from __future__ import annotations

import threading
from collections import Counter

import httpcore
import httpx
import pytest

from lab.model import ErrorClass, Sample
from lab.probe.channel import Channel, StreamCut, make_request
from lab.probe.config import ProbeConfig, client_of, kind_of, kind_pattern
from lab.probe.schedule import run_probe

URL = "http://shop.test/"


@pytest.mark.parametrize(("clients", "shares"), [(32, 1), (32, 2), (7, 2), (1, 2), (5, 3)])
def test_every_client_gets_its_share_of_ticks_and_lives_in_one_process(clients: int, shares: int) -> None:
    seqs = range(clients * shares * 20)
    owner = {seq: client_of(seq, clients, shares) for seq in seqs}
    per_client = Counter(owner.values())
    assert set(per_client) == set(range(clients))
    assert max(per_client.values()) - min(per_client.values()) <= max(per_client.values()) // 2 + 1
    if clients >= shares:  # each client's ticks all in the process of its share
        for client in range(clients):
            assert {seq % shares for seq in seqs if owner[seq] == client} == {client % shares}


def test_a_kinds_share_is_its_weight_and_spread_out() -> None:
    pattern = kind_pattern((("get", 80), ("post", 10), ("slow", 5), ("stream", 5)))
    assert len(pattern) == 100 and Counter(pattern) == {"get": 80, "post": 10, "slow": 5, "stream": 5}
    posts = [i for i, kind in enumerate(pattern) if kind == "post"]
    gaps = [b - a for a, b in zip(posts, posts[1:], strict=False)]
    assert min(gaps) > 1 and max(gaps) <= 20  # about one every tenth tick, never two in a row
    assert [kind_of(seq, pattern) for seq in (0, 100, 200)] == [pattern[0]] * 3
    assert kind_pattern((("get", 1),)) == ("get",)


def test_each_kind_goes_to_its_path_with_the_clients_id_and_a_testers_canary() -> None:
    config = ProbeConfig(
        URL, 10, clients=4, testers=1, mix=(("get", 1), ("post", 1), ("slow", 1), ("stream", 1))
    )
    get, post = make_request(config, 2, "get"), make_request(config, 2, "post")
    slow, stream = make_request(config, 2, "slow"), make_request(config, 2, "stream")
    assert (get.method, str(get.url)) == ("GET", URL)
    assert (post.method, post.url.path, post.content) == ("POST", "/write", b'{"write": true}')
    assert (slow.url.path, slow.url.query) == ("/slow", b"ms=1000")
    assert (stream.url.path, stream.url.query) == ("/stream", b"s=3&every_ms=200")
    assert get.headers["X-Lab-Client"] == "c002" and get.headers["Cookie"] == "lab_client=c002"
    assert "X-Canary" not in get.headers
    assert make_request(config, 0, "get").headers["X-Canary"] == "always"  # client 0 is the tester


def chunked(*chunks: bytes, end: bool = True) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App-Version: v1\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return head + body + (b"0\r\n\r\n" if end else b"")


STREAM = ProbeConfig(URL, 1, mode="fresh", mix=(("stream", 1),))


def test_a_whole_stream_is_a_good_answer() -> None:
    channel = Channel(
        STREAM, network_backend=httpcore.MockBackend([chunked(b"data: 0\n\n", b"event: end\ndata: done\n\n")])
    )
    assert channel.exchange("stream")[:2] == (200, "v1")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(chunked(b"data: 0\n\n", b"data: 1\n\n"), id="ended-without-its-end-event"),
        pytest.param(chunked(b"data: 0\n\n", end=False), id="connection-closed-mid-stream"),
    ],
)
def test_a_stream_cut_short_is_a_cut(raw: bytes) -> None:
    channel = Channel(STREAM, network_backend=httpcore.MockBackend([raw]))
    with pytest.raises(StreamCut):
        channel.exchange("stream")


def test_a_cut_stream_is_its_own_failure_class_in_the_samples() -> None:
    out: list[Sample] = []
    raw = chunked(b"data: 0\n\n", end=False)

    class Backend(httpcore.MockBackend):
        def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.NetworkStream:
            return httpcore.MockStream([raw])

    config = ProbeConfig(URL, 100, mode="fresh", workers=2, clients=2, mix=(("stream", 1),))
    run_probe(config, threading.Event(), out.extend, network_backend=Backend([]), max_requests=4)
    sent = [s for s in out if s.sent is not None]
    assert sent and {(s.kind, s.error) for s in sent} == {("stream", ErrorClass.STREAM_CUT)}
    assert {s.client for s in sent} <= {0, 1}


def test_each_client_keeps_its_own_connection() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-Lab-Client"])
        return httpx.Response(200, headers={"X-App-Version": "v1"})

    out: list[Sample] = []
    config = ProbeConfig(URL, 400, workers=8, clients=3)
    run_probe(config, threading.Event(), out.extend, transport=httpx.MockTransport(handler), max_requests=30)
    assert Counter(seen) == {"c000": 10, "c001": 10, "c002": 10}
    assert {s.client for s in out} == {0, 1, 2} and all(f"c{s.client:03d}" for s in out)
