"""Scenario files without the command line: reading, every kind of mistake, and writing back."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import BadInput
from lab.options import BOUNDS, Bounds, RunOptions
from lab.scenario_file import ScenarioFile, document, dumps, load, save
from lab.targets.fleet.nginx import ProxySettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FULL_TOML = """
strategy = "canary"
[params]
percents = [5, 100]
bake_s = 1.5
by = "instances"
[fleet]
size = 3
health_timeout = 20
engine = "swarm"
[versions.v1]
env = { APP_LATENCY_MS = "5" }
[versions.v2]
scenario = "errors"
env = { APP_FAIL_RATE = 0.05, APP_SEED = 7 }
[probe]
rate = 150
mode = "fresh"
baseline = 0.5
settle = 1
clients = 16
testers = 2
mix = "get=9,post=1"
[proxy]
next_upstream = "off"
[budgets]
max_downtime_ms = 50
max_failed = 2
"""

FULL_YAML = """
strategy: canary
params:
  percents: [5, 100]
  bake_s: 1.5
  by: instances
fleet:
  size: 3
  health_timeout: 20
  engine: swarm
versions:
  v1:
    env: {APP_LATENCY_MS: "5"}
  v2:
    scenario: errors
    env:
      APP_FAIL_RATE: 0.05
      APP_SEED: 7
probe:
  rate: 150
  mode: fresh
  baseline: 0.5
  settle: 1
  clients: 16
  testers: 2
  mix: get=9,post=1
proxy:
  next_upstream: "off"
budgets:
  max_downtime_ms: 50
  max_failed: 2
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def content(loaded: ScenarioFile) -> tuple[object, ...]:
    return loaded.strategy, loaded.params, loaded.options, loaded.env


@pytest.mark.parametrize(
    ("name", "text"), [("s.toml", FULL_TOML), ("s.yaml", FULL_YAML), ("s.yml", FULL_YAML)]
)
def test_every_field_sets_the_option_of_the_same_name(tmp_path: Path, name: str, text: str) -> None:
    loaded = load(write(tmp_path, name, text))
    assert loaded.strategy == "canary"
    assert loaded.params == {"percents": (5, 100), "bake_s": 1.5, "by": "instances"}
    assert loaded.options == {
        "fleet_size": 3,
        "health_timeout": 20.0,
        "engine": "swarm",
        "scenario": "errors",
        "rate": 150.0,
        "mode": "fresh",
        "baseline": 0.5,
        "settle": 1.0,
        "clients": 16,
        "testers": 2,
        "mix": "get=9,post=1",
        "next_upstream": "off",
        "max_downtime_ms": 50.0,
        "max_failed": 2,
    }
    # Numbers are fine env values; they reach the app as the text a person would have written.
    assert loaded.env == {"v1": {"APP_LATENCY_MS": "5"}, "v2": {"APP_FAIL_RATE": "0.05", "APP_SEED": "7"}}
    assert loaded.env_pairs("v2") == ["APP_FAIL_RATE=0.05", "APP_SEED=7"]
    assert loaded.fields["scenario"] == "versions.v2.scenario" and loaded.fields["rate"] == "probe.rate"
    assert loaded.defaults()["strategy"] == "canary" and loaded.defaults()["fleet_size"] == 3


def test_a_versions_app_sets_the_image_options(tmp_path: Path) -> None:
    text = (
        '[versions.v1]\nimage = "shop:1.4"\nport = 9000\nhealth_path = "/ready"\n'
        '[versions.v2]\nimage = "shop:1.5"\n'
    )
    loaded = load(write(tmp_path, "apps.toml", text))
    assert loaded.options == {
        "v1_image": "shop:1.4",
        "v1_port": 9000,
        "v1_health_path": "/ready",
        "v2_image": "shop:1.5",
    }
    assert loaded.fields["v1_port"] == "versions.v1.port"


def test_an_empty_file_is_an_empty_scenario(tmp_path: Path) -> None:
    for name in ("e.toml", "e.yaml"):
        loaded = load(write(tmp_path, name, ""))
        assert content(loaded) == (None, {}, {}, {}) and loaded.defaults() == {}


def test_the_examples_load_and_the_toml_and_yaml_twins_say_the_same() -> None:
    examples = sorted(EXAMPLES.glob("*.toml")) + sorted(EXAMPLES.glob("*.yaml"))
    assert len(examples) >= 3
    loaded = {p.name: load(p) for p in examples}
    assert all(s.strategy for s in loaded.values())
    assert content(loaded["canary-bad-release.toml"]) == content(loaded["canary-bad-release.yaml"])


# ---------------------------------------------------------------------------------------------------
# Every kind of mistake: one line that names the file and the field.

MISTAKES = [
    # unknown keys, with the nearest known one when there is one
    ("s.toml", "[fleet]\nsise = 2\n", "fleet.sise: unknown field (did you mean 'size'?)"),
    (
        "s.toml",
        "[fleet]\ncolour = 2\n",
        "fleet.colour: unknown field (fields here: size, health_timeout, engine)",
    ),
    ("s.toml", "[probes]\nrate = 1\n", "probes: unknown field (did you mean 'probe'?)"),
    ("s.toml", "[versions.v3]\nenv = {}\n", "versions.v3: unknown field (fields here: v1, v2)"),
    ("s.toml", '[versions.v1]\nscenario = "errors"\n', "versions.v1.scenario: unknown field"),
    ("s.yaml", "probe:\n  baseline_s: 1\n", "probe.baseline_s: unknown field (did you mean 'baseline'?)"),
    # wrong types
    ("s.yaml", "probe:\n  rate: fast\n", 'probe.rate: expected a number, got "fast"'),
    ("s.toml", 'probe = { rate = "200" }\n', 'probe.rate: expected a number, got "200"'),
    ("s.toml", "[fleet]\nsize = 2.5\n", "fleet.size: expected a whole number, got 2.5"),
    ("s.yaml", "budgets:\n  max_failed: true\n", "budgets.max_failed: expected a whole number, got true"),
    ("s.yaml", "probe:\n  rate:\n", "probe.rate: expected a number, got null"),
    ("s.toml", "[probe]\nmode = 1\n", "probe.mode: expected a string, got 1"),
    ("s.toml", "strategy = 7\n", "strategy: expected a string, got 7"),
    ("s.toml", "fleet = 4\n", "fleet: expected a table, got 4"),
    ("s.yaml", "probe: [1, 2]\n", "probe: expected a mapping, got [1, 2]"),
    (
        "s.yaml",
        "versions:\n  v2:\n    env: {APP_FAIL_AT_START: yes}\n",
        "APP_FAIL_AT_START: expected a string, got true",
    ),
    ("s.yaml", "fleet:\n  1: 2\n", "fleet: keys must be strings, got 1"),
    # out of range: the command line's bounds
    ("s.toml", "[fleet]\nsize = 99\n", "fleet.size: must be from 1 up to 16, got 99"),
    ("s.toml", "[probe]\nrate = 0\n", "probe.rate: must be above 0 up to 5000, got 0"),
    ("s.toml", "[probe]\nrate = inf\n", "probe.rate: must be above 0 up to 5000, got inf"),
    ("s.toml", "[probe]\nsettle = -1\n", "probe.settle: must be from 0 up to 600, got -1"),
    ("s.toml", "[fleet]\nhealth_timeout = 0\n", "fleet.health_timeout: must be above 0 up to 600, got 0"),
    ("s.toml", "[budgets]\nmax_failed = -1\n", "budgets.max_failed: must be from 0 up to 1e+12, got -1"),
    ("s.toml", '[probe]\nmode = "slow"\n', 'probe.mode: must be one of keepalive, fresh, got "slow"'),
    # strategies and their parameters
    ("s.toml", 'strategy = "canry"\n', "strategy: unknown strategy 'canry' (did you mean 'canary'?)"),
    (
        "s.toml",
        'strategy = "canary"\n[params]\nbake = 1\n',
        "params.bake: canary has no such parameter (did you mean 'bake_s'?)",
    ),
    (
        "s.toml",
        'strategy = "rolling"\n[params]\nweight = 10\n',
        "params.weight: rolling has no such parameter (its parameters: batch, drain_s)",
    ),
    (
        "s.toml",
        'strategy = "canary"\n[params]\nbake_s = "x"\n',
        "params.bake_s: parameter bake_s='x' is not a valid float",
    ),
    (
        "s.toml",
        'strategy = "canary"\n[params]\nby = "cpu"\n',
        "params.by: parameter by='cpu' must be one of: weight, instances",
    ),
    (
        "s.toml",
        'strategy = "canary"\n[params]\npercents = [50, 10]\n',
        "params.percents: parameter percents=",
    ),
    (
        "s.toml",
        "[params]\nbake_s = 1\n",
        "params: parameters need a strategy: add strategy = NAME at the top",
    ),
    # what the lab reserves, and other checked values
    (
        "s.toml",
        '[versions.v1]\nenv = { APP_VERSION = "v9" }\n',
        "versions.v1.env.APP_VERSION: set by the lab itself",
    ),
    ("s.toml", '[versions.v2]\nenv = { "A=B" = "1" }\n', 'versions.v2.env."A=B": not a variable name'),
    (
        "s.toml",
        '[versions.v2]\nscenario = "erors"\n',
        "versions.v2.scenario: unknown scenario 'erors' (did you mean 'errors'?)",
    ),
    (
        "s.toml",
        '[proxy]\nnext_upstream = "sometimes"\n',
        "proxy.next_upstream: next_upstream 'sometimes' is not valid",
    ),
    # a version's own image
    (
        "s.toml",
        "[versions.v1]\nport = 9000\n",
        "versions.v1.port: describes your own image: give versions.v1.image too",
    ),
    (
        "s.toml",
        '[versions.v2]\nhealth_path = "/ready"\n',
        "versions.v2.health_path: describes your own image",
    ),
    (
        "s.toml",
        '[versions.v1]\nimage = "my app"\n',
        "versions.v1.image: image 'my app' is not an image reference",
    ),
    (
        "s.toml",
        '[versions.v1]\nimage = "a:1"\nport = 70000\n',
        "versions.v1.port: port must be a whole number from 1",
    ),
    (
        "s.toml",
        '[versions.v1]\nimage = "a:1"\nport = "80"\n',
        'versions.v1.port: expected a whole number, got "80"',
    ),
    (
        "s.toml",
        '[versions.v2]\nimage = "a:1"\nhealth_path = "ready"\n',
        "versions.v2.health_path: health path 'ready' must start with /",
    ),
    # syntax, with the line
    ("s.toml", 'strategy = "canary"\n[probe\nrate = 1\n', "line 2, column 7: invalid TOML: Expected ']'"),
    ("s.toml", "[probe]\nrate = 1\nrate = 2\n", "line 3, column 9: invalid TOML: Cannot overwrite a value"),
    ("s.yaml", "probe:\n  rate: [1\n", "line 3, column 1: invalid YAML: expected ',' or ']'"),
    ("s.yaml", "probe:\n  rate: 1\n  rate: 2\n", "line 3, column 3: invalid YAML: duplicate key 'rate'"),
    ("s.yaml", "probe:\n\trate: 1\n", "line 2, column 1: invalid YAML: found character '\\t'"),
    ("s.yaml", "? [a]\n: 1\n", "line 1, column 3: invalid YAML: found unhashable key"),
    # not a mapping at all
    ("s.yaml", "- 1\n- 2\n", "expected a mapping of sections at the top, got a list"),
    ("s.yaml", "just words\n", "expected a mapping of sections at the top, got a string"),
    ("s.toml", b"strategy = '\xff'\n", "not UTF-8 text"),
]


@pytest.mark.parametrize(("name", "text", "message"), MISTAKES)
def test_a_mistake_is_one_line_naming_the_file_and_the_field(
    tmp_path: Path, name: str, text: str | bytes, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(BadInput) as caught:
        load(path)
    shown = str(caught.value)
    assert shown.startswith(f"{path}: "), shown
    assert message in shown, shown
    assert "\n" not in shown
    assert caught.value.exit_code == 2


def test_a_missing_file_a_folder_and_an_unknown_extension(tmp_path: Path) -> None:
    cases = {
        tmp_path / "gone.toml": "gone.toml: no such file",
        tmp_path / "dir.yaml": "dir.yaml: is a directory, not a scenario file",
        tmp_path / "s.json": "s.json: extension '.json': use .toml, .yaml or .yml",
        tmp_path / "scenario": "scenario: no extension: use .toml, .yaml or .yml",
    }
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "s.json").write_text("{}")
    for path, message in cases.items():
        with pytest.raises(BadInput, match="^" + str(tmp_path).replace("\\", "\\\\")) as caught:
            load(path)
        assert str(caught.value).endswith(message)


def test_a_folder_without_an_extension_is_a_folder_and_an_empty_name_says_so(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    with pytest.raises(BadInput, match="cfg: is a directory, not a scenario file$"):
        load(tmp_path / "cfg")  # was "no extension", the wrong complaint
    with pytest.raises(BadInput, match="^--config is empty"):
        load("")


def test_a_number_read_as_text_says_how_to_write_it_and_env_values_stay_as_written(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) reads 1e3 as text. It stays text: an env value such as a short commit id, 5e1234,
    # must come back as written (a --save-config file writes it bare); the error says how to write a number.
    said = r"rate: expected a number, got .1e3. \(text, not a number: no quotes; .*1\.0e\+3\)"
    with pytest.raises(BadInput, match=said):
        load(write(tmp_path, "s.yaml", "probe:\n  rate: 1e3\n"))
    text = "probe:\n  rate: 1.0e+3\nversions:\n  v2:\n    env: {SHA: 5e1234}\n"
    loaded = load(write(tmp_path, "e.yaml", text))
    assert loaded.options["rate"] == 1000.0 and loaded.env["v2"] == {"SHA": "5e1234"}


def test_the_command_line_and_files_share_one_set_of_bounds() -> None:
    assert BOUNDS["fleet_size"].problem(16) is None and BOUNDS["fleet_size"].problem(17)
    assert BOUNDS["rate"].problem(0) == "must be above 0 up to 5000, got 0"
    assert Bounds(0, 1).problem(float("nan")) == "must be from 0 up to 1, got nan"
    from lab.options import check_number

    with pytest.raises(BadInput, match=r"^--fleet must be from 1 up to 16, got 17$"):
        check_number("--fleet", 17, "fleet_size")


# ---------------------------------------------------------------------------------------------------
# Writing: what `--save-config` writes reads back to the same values.


def config(**overrides: object) -> RunOptions:
    settings: dict = {
        "strategy": "canary",
        "params": {"percents": (5, 100), "bake_s": 1.5, "max_p99_ms": None},
        "fleet_size": 3,
        "rate": 150.0,
        "mode": "fresh",
        "v1_env": {"APP_LATENCY_MS": "5"},
        "v2_env": {"APP_FAIL_RATE": "0.2", "APP_SEED": "3"},  # the first from scenario errors
        "scenario": "errors",
        "baseline_s": 0.5,
        "settle_s": 1.0,
        "health_timeout_s": 20.0,
        "proxy": ProxySettings(next_upstream="off"),
        "clients": 8,
        "testers": 2,
        "mix": (("get", 90), ("post", 10)),
    }
    settings.update(overrides)
    return RunOptions(**settings)


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_save_then_load_gives_every_value_back(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"saved{suffix}"
    save(path, config(), max_downtime_ms=12.5, max_failed=0)
    text = path.read_text()
    assert text.startswith("# deploy lab scenario")
    assert "APP_FAIL_RATE" not in text  # the named release's env is written once, as its name
    loaded = load(path)
    assert loaded.strategy == "canary"
    assert loaded.params == {"percents": (5, 100), "bake_s": 1.5}  # None: the default, left out
    assert loaded.options == {
        "fleet_size": 3,
        "health_timeout": 20.0,
        "engine": "docker",
        "scenario": "errors",
        "rate": 150.0,
        "mode": "fresh",
        "baseline": 0.5,
        "settle": 1.0,
        "next_upstream": "off",
        "max_downtime_ms": 12.5,
        "max_failed": 0,
        "clients": 8,
        "testers": 2,
        "mix": "get=90,post=10",
    }
    assert loaded.env == {"v1": {"APP_LATENCY_MS": "5"}, "v2": {"APP_SEED": "3"}}


def test_an_env_value_that_differs_from_the_named_release_is_kept(tmp_path: Path) -> None:
    doc = document(config(v2_env={"APP_FAIL_RATE": "0.5"}))
    assert doc["versions"]["v2"] == {"scenario": "errors", "env": {"APP_FAIL_RATE": "0.5"}}
    assert "budgets" not in doc


def test_parameters_are_written_as_their_strategy_reads_them(tmp_path: Path) -> None:
    from lab import strategies

    params = strategies.get("rolling").coerce({"batch": "25%", "drain_s": "1"})
    doc = document(config(strategy="rolling", params=params))
    assert doc["params"] == {"batch": "25%", "drain_s": 1.0}
    path = write(tmp_path, "r.yaml", dumps(doc, "yaml"))
    assert load(path).params == params


def test_writing_where_it_cannot_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot write"):
        save(tmp_path / "no" / "such" / "dir.toml", config())
    with pytest.raises(BadInput, match="use .toml, .yaml or .yml"):
        save(tmp_path / "s.ini", config())
    assert not (tmp_path / "s.ini").exists()


def test_the_every_field_examples_in_docs_config_load_and_say_the_same(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    section = doc.split("## Every field", 1)[1]
    toml_text = section.split("```toml\n", 1)[1].split("```", 1)[0]
    yaml_text = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "every.toml").write_text(toml_text)
    (tmp_path / "every.yaml").write_text(yaml_text)
    from_toml, from_yaml = load(tmp_path / "every.toml"), load(tmp_path / "every.yaml")
    assert from_toml.options == from_yaml.options and from_toml.env == from_yaml.env
    assert from_toml.params == from_yaml.params and from_toml.strategy == from_yaml.strategy
    # Every field the loader knows appears in the example, so a new one cannot go undocumented.
    from lab.scenario_file import APP_FIELDS, SECTIONS

    fields = {f.option for section_fields in SECTIONS.values() for f in section_fields.values()}
    fields |= {f"v1_{f.option}" for f in APP_FIELDS.values()}
    missing = fields - set(from_toml.options)
    assert missing == set(), f"docs/config.md leaves out {sorted(missing)}"
