"""Schemathesis generates requests from the server's own OpenAPI schema: none may get a 5xx.

The server has no worker, so the valid videos it accepts stay queued and cost no CPU; and no
chat model, so the assistant's routes answer their one honest 5xx, 503 `assistant_unavailable`.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_no_generated_request_gets_a_server_error(make_server):
    fuzzed = make_server(
        env={"MOVIOLA_WORKERS": "0", "MOVIOLA_MAX_QUEUED_PER_KEY": "100000"}
    ).start()
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # every documented route is fuzzed
    failures: list[str] = []
    statuses: list[int] = []

    for operation in operations:
        fuzz(operation, fuzzed.url, failures, statuses)()

    assert len(statuses) >= 5 * len(operations)
    assert {200, 400, 404} <= set(statuses)  # valid requests, refused ones, unknown ids
    assert not failures, "\n".join(failures[:10])


def fuzz(operation, base_url: str, failures: list[str], statuses: list[int]):
    """A Hypothesis test that sends `operation` generated requests and notes every 5xx."""

    @hypothesis.settings(
        max_examples=30,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy())
    def call(case):
        response = case.call(base_url=base_url, timeout=30)
        statuses.append(response.status_code)
        if response.status_code >= 500 and not _no_assistant(response):
            failures.append(
                f"{operation.method.upper()} {operation.path} → {response.status_code}: "
                f"{response.text[:200]}"
            )

    return call


def _no_assistant(response) -> bool:
    """The answer of a server with no chat model to a request its assistant would have taken."""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return response.status_code == 503 and code == "assistant_unavailable"
