"""compose/ stays in step with what the lab renders: the configs byte for byte, the names, port and path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab import compose_files
from lab.compose_files import COMPOSE_FILE, ROOT, topologies
from lab.engines.docker.images import PROXY_IMAGE, app_image

FOLDERS = [t.folder for t in topologies()]
UPSTREAM_SERVER = re.compile(r"^\s*server (\S+):(\d+) weight=\d+ .*;\s+# (\S+) ", re.MULTILINE)
HEALTH_PROXY = re.compile(r"proxy_pass http://\$lab_target:(\d+)(/\S*);")
HEALTH_MAP = re.compile(r"map \$lab_version \$(lab_health_port|lab_health_path) \{(.*?)\}", re.DOTALL)
HEALTHCHECK_URL = re.compile(r"^\s*test: \[.*'http://127\.0\.0\.1:(\d+)(/[^']*)'", re.MULTILINE)
SERVICE = re.compile(r"^  ([a-z0-9][a-z0-9-]*):\s*$", re.MULTILINE)
PUBLISHED = re.compile(r'^\s*- "([\d.]+):\$\{LAB_COMPOSE_PORT:-(\d+)\}:(\d+)"\s*$', re.MULTILINE)
LISTEN = re.compile(r"^\s*listen (\d+);", re.MULTILINE)


def services(compose_text: str) -> dict[str, str]:
    """Each service's block of text, from a compose file in the generator's plain layout."""
    body = compose_text.split("\nservices:\n", 1)[1]
    names = SERVICE.findall(body)
    blocks = re.split(SERVICE, body)[1:]  # name, block, name, block ...
    return {name: block for name, block in zip(blocks[::2], blocks[1::2], strict=True) if name in names}


def health_checks(config: str) -> set[tuple[str, str]]:
    """(port, path) the admin port's health check asks of an instance: written out in the location, or
    looked up by version in the config's maps."""
    literal = set(HEALTH_PROXY.findall(config))
    if literal:
        return literal
    values: dict[str, set[str]] = {}
    for name, body in HEALTH_MAP.findall(config):
        values[name] = {line.split()[1].rstrip(";") for line in body.strip().splitlines() if line.strip()}
    assert "proxy_pass http://$lab_target:$lab_health_port$lab_health_path;" in config
    return {(port, path) for port in values["lab_health_port"] for path in values["lab_health_path"]}


def read(folder: str, name: str) -> str:
    return (ROOT / folder / name).read_text(encoding="utf-8")


def test_committed_files_are_what_the_lab_renders_now() -> None:
    # Byte for byte; when this fails after a change to the nginx template, run `python -m lab.compose_files`.
    assert compose_files.stale() == []


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_stray_nginx_config_sits_beside_the_rendered_ones(folder: str) -> None:
    rendered = {path.name for path in compose_files.rendered() if path.parent.name == folder}
    present = {path.name for path in (ROOT / folder).glob("nginx*.conf")}
    assert present <= rendered


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_services_are_the_instances_nginx_names(folder: str) -> None:
    svc = services(read(folder, COMPOSE_FILE))
    apps = {name for name in svc if name != "proxy"}
    assert "proxy" in svc
    named: set[str] = set()
    for conf in (ROOT / folder).glob("nginx*.conf"):
        servers = UPSTREAM_SERVER.findall(conf.read_text(encoding="utf-8"))
        assert servers, conf
        for host, _port, comment_name in servers:
            assert host == comment_name
            named.add(host)
    # Every instance a config routes to is a service, and every app service is routed to by some config.
    assert named == apps
    for name in apps:
        version = name.split("-")[1]
        assert f"image: {app_image(version)}\n" in svc[name]
        assert f"APP_INSTANCE: {name}\n" in svc[name]
    # The proxy waits for every instance's health check before nginx resolves their names.
    for name in apps:
        assert re.search(rf"^      {name}:\n        condition: service_healthy$", svc["proxy"], re.MULTILINE)


@pytest.mark.parametrize("folder", FOLDERS)
def test_app_port_and_health_path_match_the_config(folder: str) -> None:
    compose = read(folder, COMPOSE_FILE)
    # One health check, in the anchor every app service merges.
    [(check_port, check_path)] = HEALTHCHECK_URL.findall(compose)
    apps = [svc for name, svc in services(compose).items() if name != "proxy"]
    assert apps and all(svc.startswith("\n    <<: *app\n") for svc in apps)
    for conf in (ROOT / folder).glob("nginx*.conf"):
        text = conf.read_text(encoding="utf-8")
        assert {port for _, port, _ in UPSTREAM_SERVER.findall(text)} == {check_port}
        # The admin port's health check asks every version the same as the compose health check does.
        assert health_checks(text) == {(check_port, check_path)}


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_proxy_is_published_on_loopback_only_away_from_lab_runs_port(folder: str) -> None:
    compose = read(folder, COMPOSE_FILE)
    svc = services(compose)
    [(address, port, target)] = PUBLISHED.findall(svc["proxy"])
    assert address == "127.0.0.1"
    assert int(port) != 8080  # `lab run`'s default
    start = re.search(r"cp /etc/deploylab/(\S+) /etc/nginx/nginx.conf", svc["proxy"])
    assert start is not None
    assert LISTEN.findall(read(folder, start.group(1)))[0] == target
    assert f"image: {PROXY_IMAGE}\n" in svc["proxy"]
    assert "- .:/etc/deploylab:ro\n" in svc["proxy"]


def test_the_two_topologies_can_be_up_at_once() -> None:
    ports = [t.port for t in topologies()]
    projects = [t.project for t in topologies()]
    assert len(set(ports)) == len(ports) and len(set(projects)) == len(projects)
    for t in topologies():
        assert f"COMPOSE_PROJECT_NAME={t.project}\n" in read(t.folder, ".env")


def test_blue_green_configs_route_to_one_colour_each_and_both() -> None:
    versions = {}
    for name in ("nginx-blue.conf", "nginx-both.conf", "nginx-green.conf"):
        hosts = [h for h, _, _ in UPSTREAM_SERVER.findall(read("blue-green", name))]
        versions[name] = {h.split("-")[1] for h in hosts}
    assert versions == {
        "nginx-blue.conf": {"v1"},
        "nginx-both.conf": {"v1", "v2"},
        "nginx-green.conf": {"v2"},
    }
    assert "cp /etc/deploylab/nginx-blue.conf" in read("blue-green", COMPOSE_FILE)


def test_check_finds_drift_and_write_repairs_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compose_files.main(["--check", "--out", str(tmp_path)]) == 1  # nothing written yet
    assert compose_files.main(["--out", str(tmp_path)]) == 0
    assert compose_files.main(["--check", "--out", str(tmp_path)]) == 0
    conf = tmp_path / "blue-green" / "nginx-green.conf"
    conf.write_text(conf.read_text().replace("weight=1", "weight=2", 1))
    assert compose_files.main(["--check", "--out", str(tmp_path)]) == 1
    assert "nginx-green.conf" in capsys.readouterr().err
    assert compose_files.main(["--out", str(tmp_path)]) == 0
    assert compose_files.stale(tmp_path) == []
