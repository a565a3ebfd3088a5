"""The compose files under compose/: the lab's topologies, to bring up and explore by hand.

Each topology's nginx configs come from `render_config`, the lab's own renderer, with the lab's default
proxy settings, so what a learner reads and reloads is what `lab run` would load for the same routing
table. The compose file is generated beside them from the same instances, app port and health path, so
the names nginx resolves are the compose services' names. `python -m lab.compose_files` writes them;
`--check` fails when the committed files differ from what the lab renders today (tests/unit checks too).

The containers carry no `deploylab` label on purpose: they are not a lab run, and `lab clean` must not
pull them from under compose. A compose project (named in each folder's .env) owns them instead:
`docker compose down` removes them and their network.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.engines.names import PROXY_IMAGE, app_image
from lab.model import Instance, Route, describe, fleet
from lab.options import RunOptions
from lab.targets.fleet.nginx import render_config
from lab.targets.fleet.target import NEW, OLD

ROOT = Path(__file__).resolve().parent.parent / "compose"
COMPOSE_FILE = "compose.yaml"
# Where the proxy sees its folder (read-only): the configs to copy over /etc/nginx/nginx.conf.
MOUNT = "/etc/deploylab"
LIVE_CONFIG = "/etc/nginx/nginx.conf"
PORT_VARIABLE = "LAB_COMPOSE_PORT"
# The app's health check runs every this often; the proxy starts once every instance has passed one.
HEALTH_INTERVAL_S = 2
FLEET = 3
# What a run renders with when nothing is given: the proxy settings and each version's app (the sample
# app: its port and health path), exactly as the runner passes them to render_config.
_RUN = RunOptions(strategy="blue-green")
SETTINGS = _RUN.proxy
APPS = {OLD: _RUN.v1_app, NEW: _RUN.v2_app}
# One health check for every instance, so both versions must be reached alike (the sample app's are).
assert len({(app.port, app.health_path) for app in APPS.values()}) == 1, APPS
APP_PORT = APPS[OLD].port
HEALTH_PATH = APPS[OLD].health_path


@dataclass(frozen=True)
class ProxyConfig:
    file: str  # name in the topology's folder
    route: Route
    purpose: str  # one line for the compose file's header


@dataclass(frozen=True)
class Topology:
    folder: str
    project: str  # compose project name, from the folder's .env
    port: int  # default host port of the proxy on 127.0.0.1 (`lab run` uses 8080)
    summary: str
    instances: tuple[Instance, ...]
    configs: tuple[ProxyConfig, ...]  # the first is the one the proxy starts on

    @property
    def start_config(self) -> ProxyConfig:
        return self.configs[0]


def topologies(size: int = FLEET) -> tuple[Topology, ...]:
    blue, green = fleet("v1", size), fleet("v2", size)
    baseline = Topology(
        folder="baseline",
        project="deploylab-baseline",
        port=8088,
        summary=f"the lab's starting point: {size} instances of {app_image('v1')} behind nginx",
        instances=blue,
        configs=(ProxyConfig("nginx.conf", Route.even(blue), "every request to v1 (the only config)"),),
    )
    blue_green = Topology(
        folder="blue-green",
        project="deploylab-blue-green",
        port=8089,
        summary=f"a blue/green pair: {size} instances of v1 (blue) and {size} of v2 (green), both up",
        instances=blue + green,
        configs=(
            ProxyConfig(
                "nginx-blue.conf", Route.even(blue), "all traffic to blue, v1 (the proxy starts on it)"
            ),
            ProxyConfig(
                "nginx-both.conf",
                Route.split({blue: 50, green: 50}),
                "half to each colour (blue-green's overlap: a mixed-version window)",
            ),
            ProxyConfig("nginx-green.conf", Route.even(green), "all traffic to green, v2"),
        ),
    )
    return baseline, blue_green


def nginx_config(topology: Topology, config: ProxyConfig) -> str:
    # Generations numbered as a run numbers them (1: its first route), in the order a deployment loads them.
    generation = topology.configs.index(config) + 1
    title = f"compose/{topology.folder}/{config.file}: {describe(config.route)}"
    return render_config(config.route, SETTINGS, generation=generation, title=title, apps=APPS)


def _app_defaults() -> list[str]:
    """What every instance shares, as a YAML anchor (Compose v1 and v2 both merge `<<: *app`)."""
    url = f"http://127.0.0.1:{APP_PORT}{HEALTH_PATH}"
    script = f"import urllib.request as u; u.urlopen('{url}', timeout=1)"
    return [
        "x-app: &app",
        "  mem_limit: 128m",
        "  healthcheck:",
        f"    # GET {HEALTH_PATH} as the lab's health check does: 200 once ready, 503 or refused before.",
        f'    test: ["CMD", "python3", "-c", "{script}"]',
        f"    interval: {HEALTH_INTERVAL_S}s",
        "    timeout: 2s",
        "    retries: 15",
        "",
    ]


def compose_file(topology: Topology) -> str:
    start = topology.start_config
    lines = [
        f"# Generated by `python -m lab.compose_files`: {topology.summary}.",
        "# The nginx configs beside it are the lab's renderer's output: edit the generator, not them.",
        "#",
        f"# Up:   docker compose -f compose/{topology.folder}/{COMPOSE_FILE} up -d",
        f"#       (Compose v1: docker-compose -f compose/{topology.folder}/{COMPOSE_FILE} up -d)",
        f"# Try:  curl -s http://127.0.0.1:{topology.port}/",
        f"# Down: docker compose -f compose/{topology.folder}/{COMPOSE_FILE} down -v --remove-orphans",
        "#",
        f"# The proxy starts on {start.file}; this folder is mounted read-only at {MOUNT} in it:",
    ]
    lines += [f"#   {c.file}: {c.purpose}" for c in topology.configs]
    if len(topology.configs) > 1:
        other = topology.configs[-1].file
        lines += [
            "# Switch by copying one over the live config and reloading nginx, as the lab does:",
            f"#   docker compose -f compose/{topology.folder}/{COMPOSE_FILE} exec -T proxy "
            f"cp {MOUNT}/{other} {LIVE_CONFIG}",
            f"#   docker compose -f compose/{topology.folder}/{COMPOSE_FILE} exec -T proxy nginx -s reload",
        ]
    lines += [
        "#",
        "# No `version:` key and no top-level `name:`: Compose v2 and Compose v1 (1.27 and later) both read",
        "# this file; the project name comes from .env, and `-p NAME` overrides it.",
        "",
        *_app_defaults(),
        "services:",
    ]
    for inst in topology.instances:
        lines += [
            f"  {inst.name}:",
            "    <<: *app",
            f"    image: {app_image(inst.version)}",
            f"    hostname: {inst.name}",
            "    environment:",
            f"      APP_INSTANCE: {inst.name}",
            "",
        ]
    command = f"cp {MOUNT}/{start.file} {LIVE_CONFIG} && exec nginx -g 'daemon off;'"
    lines += [
        "  proxy:",
        f"    image: {PROXY_IMAGE}",
        "    hostname: proxy",
        f'    command: ["sh", "-c", "{command}"]',
        "    volumes:",
        f"      - .:{MOUNT}:ro",
        "    ports:",
        f"      # 127.0.0.1 only; {PORT_VARIABLE}=PORT moves it (`lab run` takes 8080).",
        f'      - "127.0.0.1:${{{PORT_VARIABLE}:-{topology.port}}}:{SETTINGS.listen_port}"',
        "    mem_limit: 128m",
        "    depends_on:",
    ]
    for inst in topology.instances:
        lines += [f"      {inst.name}:", "        condition: service_healthy"]
    return "\n".join(lines) + "\n"


def env_file(topology: Topology) -> str:
    return (
        "# docker compose and docker-compose read this from the folder: the project owning the containers.\n"
        f"COMPOSE_PROJECT_NAME={topology.project}\n"
    )


def render(topology: Topology) -> dict[str, str]:
    """Every file of the topology's folder, by name."""
    files = {COMPOSE_FILE: compose_file(topology), ".env": env_file(topology)}
    for config in topology.configs:
        files[config.file] = nginx_config(topology, config)
    return files


def rendered(root: Path = ROOT) -> dict[Path, str]:
    return {root / t.folder / name: text for t in topologies() for name, text in render(t).items()}


def stale(root: Path = ROOT) -> list[Path]:
    """Files under `root` that differ from what the lab renders now (or are missing)."""
    return [
        path
        for path, text in rendered(root).items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def write(root: Path = ROOT) -> list[Path]:
    changed = stale(root)
    for path, text in rendered(root).items():
        if path in changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.compose_files", description="Render compose/ from the lab's nginx template."
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT, help="folder to write (default: the repo's compose/)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file differs from what the lab renders",
    )
    args = parser.parse_args(argv)
    if args.check:
        differ = stale(args.out)
        for path in differ:
            print(f"out of date: {path} (run `python -m lab.compose_files`)", file=sys.stderr)
        return 1 if differ else 0
    changed = write(args.out)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print(f"{args.out}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
