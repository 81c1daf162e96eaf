"""Fixtures for the orchestration tests: a temporary Prefect API for the session, one tiny DVC project on
which the flow has run end to end, a way to copy it before changing anything, and Prefect's artifacts."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def prefect_api():
    """Prefect's documented test harness: a temporary API server and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):  # None: PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS
        yield


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory, prefect_api: None, project_factory, flow_module):
    """``(root, state)``: a tiny project after one complete flow run (read-only: copy it to change it)."""
    root = project_factory(tmp_path_factory.mktemp("trained"))
    state = flow_module.pipeline(root=str(root), return_state=True)
    return root, state


@pytest.fixture
def project_copy(trained_project: tuple[Path, Any], tmp_path: Path) -> Path:
    """A private copy of the trained project: data, DVC cache and lock, MLflow store (its run artifacts stay
    where the original recorded them, which the copy only reads)."""
    return Path(shutil.copytree(trained_project[0], tmp_path / "project", symlinks=True))


@pytest.fixture
def artifacts() -> Callable[[Any], dict[str, str]]:
    """``artifacts(flow_state) -> {key: markdown}`` of the artifacts the flow run created."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, TaskRunFilter
    from prefect.client.schemas.sorting import ArtifactSort

    def read(state: Any) -> dict[str, str]:
        flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        with get_client(sync_client=True) as client:
            # every field explicit: this server version rejects the nulls the client sends for omitted ones
            found = client.read_artifacts(
                artifact_filter=flt,
                flow_run_filter=FlowRunFilter(),
                task_run_filter=TaskRunFilter(),
                sort=ArtifactSort.CREATED_DESC,
                limit=50,
                offset=0,
            )
        return {a.key: str(a.data) for a in found if a.key}

    return read


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` (``make test``), the tests on the trained project run on one worker,
    which trains it once; the other workers take the rest of the suite meanwhile."""
    for item in items:
        if {"trained_project", "project_copy"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("trained_project"))
