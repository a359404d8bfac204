"""Integration-test fixtures: registries and images from tests/support, and a sync/async API runner."""

from __future__ import annotations

import pytest

from tests.integration.api import Api
from tests.support.fixtures import *  # noqa: F403


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own empty CLI cache, never the user's."""
    monkeypatch.setenv("REGPEEK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> Api:
    """Runs library calls through ``regpeek.Client`` or ``regpeek.AsyncClient``: every test gets both."""
    return Api(request.param)
