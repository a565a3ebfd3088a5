"""Named releases, good and bad, for `--scenario`: each is the environment v2's instances get."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    v2_env: dict[str, str] = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("default", "a healthy v2"),
        Scenario("crash-at-start", "v2 exits with an error as it starts", {"APP_FAIL_AT_START": "1"}),
        Scenario("never-healthy", "v2 listens, but its health check never passes", {"APP_NEVER_READY": "1"}),
        Scenario("errors", "v2 answers 20% of requests with 500", {"APP_FAIL_RATE": "0.2"}),
        Scenario("slow-boot", "v2 takes 5 s to boot", {"APP_BOOT_DELAY_S": "5"}),
        Scenario(
            "ignores-sigterm",
            "v2 ignores SIGTERM: stopping it waits out the grace period",
            {"APP_IGNORE_SIGTERM": "1"},
        ),
    )
}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
