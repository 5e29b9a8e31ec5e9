"""A live server (server.py: the pages and the HTTP API) per test module, and clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from exact import api_tokens
from tests.live_server import LiveApp, served

# Generous enough that no functional test meets it; tests/api/test_rate_limits.py starts its own stingy server.
TEST_RATE_PER_MINUTE = "100000"


@pytest.fixture(scope="module")
def api_server(scratch_databases, tmp_path_factory, request: pytest.FixtureRequest) -> Iterator[LiveApp]:
    env = {"EXACT_WORKER": "on", "EXACT_SCORING_PROCESSES": "1", "EXACT_API_RATE_PER_MINUTE": TEST_RATE_PER_MINUTE,
           "EXACT_MAX_UPLOAD_MB": "2"}  # fmt: skip
    with served(scratch_databases, tmp_path_factory, request, env, prefix="exact_api") as app:
        yield app


@pytest.fixture
def api(api_server: LiveApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{api_server.url}/api/v1", timeout=30) as client:
        yield client


def token_for(app: LiveApp, user, *, scopes=("read", "submit"), name: str = "test") -> str:
    return api_tokens.create_token(app.db, user.id, name=name, scopes=list(scopes), days=30).secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
