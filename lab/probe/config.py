"""What the probe is told: where to send, how fast, and how to tell late from on time; which client sends
each tick, and what it asks for."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from lab.options import MODES, Mix, OkRanges

DRIVERS = ("asyncio", "threads")  # the default first


@dataclass(frozen=True)
class ProbeConfig:
    url: str
    rate: float  # requests per second
    mode: str = "keepalive"  # "keepalive": one reused connection per worker; "fresh": new TCP connection each
    timeout_s: float = 2.0  # connect, write and read timeout, each, per request
    workers: int = 64  # requests in flight at most; a tick with every worker busy is client saturation
    # 5 ms: a healthy probe sends within 0.2 to 2 ms (p99) of schedule here, but on a 2-core machine that
    # also runs the fleet, the proxy and Docker, a woken thread can wait a scheduler slice of a few ms for
    # a core; 2 ms flagged those as stalls in 1 to 3% of ticks with the probe idle half the time. 5 ms is
    # still 60 times finer than the shortest outage the lab measures (in-place, about 300 ms), and a
    # tick's lateness always shows in its latency, which counts from the scheduled time.
    late_after_s: float = 0.005
    skip_after_s: float = 1.0  # a tick more overdue than this is recorded unsent instead of joining a burst
    # One schedule split over several processes: this one sends the ticks whose seq is `share` modulo
    # `shares`. One Python process tops out near 1,000 fresh connections per second on this machine.
    share: int = 0
    shares: int = 1
    start_at: float | None = None  # tick 0's due time on the shared monotonic clock; None: at once
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request, as given
    insecure: bool = False  # https: accept any certificate
    ok: OkRanges = ((200, 399),)  # statuses that are a good answer
    version_header: str = "X-App-Version"
    version_from_body: str | None = None  # a regular expression over the body (group 1, else the match)
    clients: int = 1  # the ticks are spread over this many clients, each with its own connections and id
    testers: int = 0  # the first `testers` clients send `X-Canary: always` (the new version, always)
    mix: Mix = (("get", 1),)  # what the ticks ask for, by weight (lab/options.py KINDS)
    # How requests are driven: "asyncio" (one event loop per process, lab/probe/aio.py) or "threads" (a
    # thread per request in flight, lab/probe/schedule.py). Same schedule, same samples. asyncio by
    # default: it sustained twice the kept-alive rate of the threads on 2 cores, and as much fresh
    # (docs/measurements.md, Benchmark).
    driver: str = "asyncio"

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.workers < 1 or self.timeout_s <= 0 or self.late_after_s < 0 or self.skip_after_s <= 0:
            raise ValueError(f"invalid probe config: {self}")
        if not 0 <= self.share < self.shares:
            raise ValueError(f"share must be in [0, {self.shares}), got {self.share}")
        if self.driver not in DRIVERS:
            raise ValueError(f"driver must be one of {DRIVERS}, got {self.driver!r}")
        if self.clients < 1 or not 0 <= self.testers <= self.clients:
            raise ValueError(f"invalid clients ({self.clients}) or testers ({self.testers})")


_ORDERS = 64  # rounds of clients before the order of a round repeats


@functools.cache
def _orders(clients: int, share: int, shares: int) -> tuple[tuple[int, ...], ...]:
    """The clients living in process `share`, in a shuffled order for each of _ORDERS rounds (seeded, so a
    run is repeatable)."""
    own = list(range(share, clients, shares))
    rng = random.Random(f"{clients}:{share}:{shares}")
    orders = []
    for _ in range(_ORDERS):
        rng.shuffle(own)
        orders.append(tuple(own))
    return tuple(orders)


def client_of(seq: int, clients: int, shares: int = 1) -> int:
    """The client that sends tick `seq`. Every client once per round, as often as any other, in an order
    shuffled from round to round: a fixed round robin of clients would alias with the proxy's own round
    robin (at 50% over two groups, the even clients would only ever meet one version). With the schedule
    split over `shares` processes (tick `seq` in process `seq % shares`), each client's ticks all stay in
    one process, so its connections are that process's. With fewer clients than processes, a client
    spans processes."""
    share, turn = seq % shares, seq // shares
    if clients <= share:  # no client of its own in this process
        return seq % clients
    orders = _orders(clients, share, shares)
    own = len(orders[0])
    return orders[(turn // own) % _ORDERS][turn % own]


def kind_pattern(mix: Mix) -> tuple[str, ...]:
    """One period of kinds, each as often as its weight and spread out evenly: nginx's smooth weighted
    round robin (each turn every kind gains its weight, the one ahead goes and pays the total back), so a
    10% kind comes every tenth tick, not ten in a row."""
    total = sum(weight for _, weight in mix)
    current = dict.fromkeys((kind for kind, _ in mix), 0)
    pattern = []
    for _ in range(total):
        for kind, weight in mix:
            current[kind] += weight
        chosen = max(current, key=lambda kind: current[kind])
        current[chosen] -= total
        pattern.append(chosen)
    return tuple(pattern)


def kind_of(seq: int, pattern: tuple[str, ...]) -> str:
    return pattern[seq % len(pattern)]
