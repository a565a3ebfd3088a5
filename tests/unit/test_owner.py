"""DEPLOYLAB_OWNER: every object of a run carries its owner, and `lab clean` removes only that owner's."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from typer.testing import CliRunner

from lab.cli.app import app
from lab.engines.base import LABEL, OWNER_LABEL, RUN_LABEL, owner_labels, run_labels
from lab.engines.docker.local import DockerEngine
from lab.engines.docker.swarm import SwarmEngine
from lab.record import Removed


def test_no_owner_no_label(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYLAB_OWNER", raising=False)
    assert owner_labels() == {}
    monkeypatch.setenv("DEPLOYLAB_OWNER", "  ")
    assert owner_labels() == {}


@pytest.mark.parametrize("engine", [DockerEngine, SwarmEngine])
def test_every_object_of_a_run_carries_its_owner(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYLAB_OWNER", "ci-job-7")
    made = engine("abc123", client=mock.Mock(), labels={"deploylab.pytest": "1"})
    assert made.labels == {"deploylab.pytest": "1", OWNER_LABEL: "ci-job-7", LABEL: "1", RUN_LABEL: "abc123"}
    assert made.fleet.labels == made.labels and made.proxy.labels == made.labels


def test_a_callers_label_cannot_take_a_runs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # A run's clean-up and its reaper find its objects by these: a caller's label of the same name must
    # not send them to another run's, or the owner's filter to another owner's.
    monkeypatch.setenv("DEPLOYLAB_OWNER", "me")
    mine = run_labels("abc123", {RUN_LABEL: "other", OWNER_LABEL: "you", "team": "x"})
    assert mine == {RUN_LABEL: "abc123", OWNER_LABEL: "me", LABEL: "1", "team": "x"}


@pytest.mark.parametrize(("owner", "filters"), [("gw1", {OWNER_LABEL: "gw1"}), (None, {})])
def test_lab_clean_removes_only_its_owners_objects(
    owner: str | None, filters: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if owner:
        monkeypatch.setenv("DEPLOYLAB_OWNER", owner)
    else:
        monkeypatch.delenv("DEPLOYLAB_OWNER", raising=False)
    removed = mock.Mock(return_value=Removed(containers=2, networks=1, services=0))
    monkeypatch.setattr("lab.engines.docker.client.remove_labelled", removed)
    monkeypatch.setattr("lab.engines.docker.client.connect", lambda: "client")
    result = CliRunner().invoke(app, ["clean"])
    assert result.exit_code == 0, result.output
    removed.assert_called_once_with("client", filters)
    assert "2 container" in result.output
