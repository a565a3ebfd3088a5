"""The lab's vocabulary: instances, plan steps, probe samples and runner events.

Everything here is a frozen dataclass with no behaviour that touches the outside world, so strategies,
analysis and reports can be built and tested without Docker or a network.

Times are seconds on one clock, ``time.monotonic()``, shared by the probe process and the runner
(CLOCK_MONOTONIC is system-wide on Linux and macOS), so a failure can be placed next to the step that
caused it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction


@dataclass(frozen=True, order=True)
class Instance:
    """One copy of the app: a version running in a numbered slot."""

    version: str
    slot: int

    @property
    def name(self) -> str:
        """Host name on the lab network (and the end of the container name)."""
        return f"app-{self.version}-{self.slot}"


def fleet(version: str, size: int, first_slot: int = 1) -> tuple[Instance, ...]:
    return tuple(Instance(version, slot) for slot in range(first_slot, first_slot + size))


# What nginx can carry in an unquoted proxy_pass URI: RFC 3986 path and query characters, without the
# ones nginx reads itself (`;`, `$`, quotes, braces, whitespace).
_HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/?-]*")
# An image reference as the engine parses one (distribution/reference's grammar): an optional registry
# host[:port]/, lowercase path components, then :tag and/or @digest. Checked here so that a typo is bad
# input before a fleet starts, not the engine's error in the middle of a run.
_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_REGISTRY = re.compile(rf"(?:{_COMPONENT}(?:\.{_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?", re.ASCII)
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(
    rf"{_PATH}(?:/{_PATH})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)


def is_image_reference(text: str) -> bool:
    """As Docker splits a name: the first part is a registry when it holds a dot or a port, is
    localhost, or has a capital (Docker Hub's names have none); the rest is the repository and tag."""
    first, slash, rest = text.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        return bool(_REGISTRY.fullmatch(first) and _REPOSITORY.fullmatch(rest))
    return bool(_REPOSITORY.fullmatch(text))


@dataclass(frozen=True)
class AppSpec:
    """What one version's instances run."""

    image: str | None = None  # None: the lab's sample app at that version (deploylab/app:v1 / :v2)
    port: int = 8080  # the port the app listens on inside its container
    health_path: str = "/healthz"  # answers 200 when the instance is ready for traffic
    # What kinds of probe request it serves (lab/options.py KINDS). None: the sample app's, all of them,
    # or for an image of your own only `get` (`GET /` answered): say more when it serves more.
    serves: tuple[str, ...] | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        if self.serves is not None:
            return self.serves
        return ("get", "post", "slow", "stream") if self.image is None else ("get",)

    def __post_init__(self) -> None:
        if self.image is not None and not is_image_reference(self.image):
            raise ValueError(
                f"image {self.image!r} is not an image reference: [HOST[:PORT]/]NAME[:TAG][@DIGEST], "
                "the name in lowercase (e.g. shop:1.4 or 127.0.0.1:5000/team/shop:1.4)"
            )
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"port must be a whole number from 1 to 65535, got {self.port!r}")
        if not _HEALTH_PATH.fullmatch(self.health_path):
            raise ValueError(
                f"health path {self.health_path!r} must start with / and hold only URL path characters "
                "(no spaces, quotes, ';', '$' or braces)"
            )
        known = ("get", "post", "slow", "stream")
        if self.serves is not None and (not self.serves or any(k not in known for k in self.serves)):
            raise ValueError(f"serves {','.join(self.serves)!r}: name some of {', '.join(known)}")


# ---------------------------------------------------------------------------------------------------
# Plan steps. A strategy is a generator that yields these; the runner sends a result back for each:
# a bool for Start and Check (True when every instance is healthy) and Judge (True when the version
# passed), None for the others.


@dataclass(frozen=True)
class Start:
    """Start instances and wait until every one is healthy (the runner's answer says whether they were)."""

    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class Stop:
    """Stop instances (SIGTERM, then SIGKILL after the grace period) and remove them."""

    instances: tuple[Instance, ...]


ROUTE_BY = ("random", "client")


@dataclass(frozen=True)
class Route:
    """The whole routing table: the percentage of traffic each instance gets. Shares sum to 100.

    `by` says how a version's share is given out: "random", request by request (the proxy's weights: one
    client may get v2 and then v1); or "client", by the client's id (its cookie), so a client stays on one
    version and one that moved to the new version stays there as its share grows. `canary` are the
    instances a request carrying `X-Canary: always` reaches whatever the shares: testers on the new
    version before it has traffic, or at any share (empty: such requests are routed as any other).
    """

    weights: tuple[tuple[Instance, Fraction], ...]
    by: str = "random"
    canary: tuple[Instance, ...] = ()

    @classmethod
    def split(
        cls,
        shares: Mapping[tuple[Instance, ...], int | Fraction],
        *,
        by: str = "random",
        canary: tuple[Instance, ...] = (),
    ) -> Route:
        """Spread each group's percentage evenly over its instances: ``{blue: 90, green: 10}``."""
        weights: dict[Instance, Fraction] = {}
        for group, pct in shares.items():
            if not group or pct == 0:
                continue
            each = Fraction(pct) / len(group)
            for inst in group:
                weights[inst] = weights.get(inst, Fraction(0)) + each
        return cls(tuple(sorted(weights.items())), by, tuple(canary))

    @classmethod
    def even(cls, instances: Iterable[Instance], *, canary: tuple[Instance, ...] = ()) -> Route:
        group = tuple(instances)
        return cls.split({group: 100}, canary=canary)

    @property
    def instances(self) -> tuple[Instance, ...]:
        return tuple(inst for inst, w in self.weights if w > 0)

    def share_by_version(self) -> dict[str, Fraction]:
        shares: dict[str, Fraction] = {}
        for inst, w in self.weights:
            shares[inst.version] = shares.get(inst.version, Fraction(0)) + w
        return shares


@dataclass(frozen=True)
class Pause:
    """Wait while the probe goes on: a bake time, a rollback window."""

    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class Check:
    """Ask whether instances are healthy now; the runner sends the verdict back into the plan."""

    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class Judge:
    """Judge a version from what the probe saw of it since traffic last changed (a canary's verdict).

    The runner sends back True when that version's error rate is at most `max_error_rate` and, if set,
    its p99 latency at most `max_p99_ms`. With fewer than `min_answers` answers the verdict is False: a
    canary that got next to no traffic proved nothing.
    """

    version: str
    max_error_rate: float = 0.01
    max_p99_ms: float | None = None
    min_answers: int = 10  # fewer answers than this prove nothing: the verdict is False (a gate fails closed)

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError(f"max_error_rate is a fraction from 0 to 1, got {self.max_error_rate:g}")
        if self.max_p99_ms is not None and not self.max_p99_ms > 0:
            raise ValueError(f"max_p99_ms must be above 0, got {self.max_p99_ms:g}")


Step = Start | Stop | Route | Pause | Check | Judge


def _names(instances: tuple[Instance, ...]) -> str:
    return ", ".join(inst.name for inst in instances)


def describe(step: Step) -> str:
    """One line a person can read, used by `lab plan`, the journal and the live view."""
    match step:
        case Start(instances):
            return f"start {_names(instances)} and wait until healthy"
        case Stop(instances):
            return f"stop {_names(instances)}"
        case Route():
            by_version = ", ".join(
                f"{version} {float(pct):g}%" for version, pct in sorted(step.share_by_version().items())
            )
            text = f"route {by_version} over {_names(step.instances)}"
            if step.by != "random":
                text += f", by {step.by}"
            if set(step.canary) - set(step.instances):  # a preview: testers reach what has no traffic
                text += f"; X-Canary: always to {_names(step.canary)}"
            return text
        case Pause(seconds, reason):
            return f"pause {seconds:g} s" + (f" ({reason})" if reason else "")
        case Check(instances):
            return f"check health of {_names(instances)}"
        case Judge(version, max_error_rate, max_p99_ms, _):
            limits = f"error rate <= {max_error_rate:.2%}"
            if max_p99_ms is not None:
                limits += f", p99 <= {max_p99_ms:g} ms"
            return f"judge {version} ({limits})"
    raise TypeError(f"not a step: {step!r}")


# ---------------------------------------------------------------------------------------------------
# What the probe and the runner record.


class ErrorClass(StrEnum):
    """Why a probe request did not get a good answer."""

    REFUSED = "refused"  # TCP connection refused: nothing listening
    RESET = "reset"  # connection reset or closed before a full response
    TIMEOUT = "timeout"  # connect or read timeout
    HTTP_5XX = "http_5xx"  # an answer with a 5xx status (nginx's 502/504, the app's 500)
    HTTP_4XX = "http_4xx"  # an answer with a 4xx status: a client of this app never expects one
    # Any other status outside the good ones (`lab measure --ok`): a redirect where none is expected ...
    HTTP_OTHER = "http_other"
    STREAM_CUT = "stream_cut"  # a stream's answer began, then stopped before its end: cut at a stop or switch
    # The probe itself could not send on time (every connection busy, pool exhausted). Not a server
    # failure: it is shown apart and never counted as downtime.
    SATURATED = "client_saturation"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Sample:
    """One scheduled probe request."""

    seq: int
    scheduled: float  # when the open-loop schedule said to send it
    sent: float | None  # when it was actually sent; None if the probe could not send it
    finished: float | None  # when the response (or the error) arrived
    status: int | None = None
    version: str | None = None  # from the X-App-Version header
    instance: str | None = None  # from the X-Instance header
    error: ErrorClass | None = None
    late: bool = False  # sent more than the probe's lateness threshold after `scheduled`
    # nginx's X-Lab-Upstream ($upstream_addr): every server the proxy tried, the one that answered last.
    # Where the app sets no version header, the fleet attributes the sample from it
    # (lab/analysis/attribution.py).
    upstream: str | None = None
    client: int = 0  # which of the probe's clients sent it (each has its own connections and id)
    kind: str = "get"  # what it asked for: get, post (a write), slow, stream (lab/probe/config.py)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def server_failure(self) -> bool:
        """Failed on the server's side (as opposed to the probe's own saturation)."""
        return self.error is not None and self.error is not ErrorClass.SATURATED


@dataclass(frozen=True)
class Event:
    """One executed plan step, stamped on the probe's clock."""

    index: int
    kind: str  # the step's class name: Start, Stop, Route ...
    detail: str  # describe(step)
    started: float
    ended: float
    result: bool | None = None  # the verdict sent back into the plan, where there is one
    error: str | None = None  # why a step failed or a verdict was negative (a rejected config, a crash)
    in_service: int | None = None  # instances receiving traffic after the step: the fleet's capacity
