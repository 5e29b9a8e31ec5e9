"""Property-based requests generated from the API's own OpenAPI document (schemathesis): none is a server error.

Every operation gets its examples as a visitor and with a participant's token, on a database holding a
score-only and a server-scored challenge. Schemathesis's pytest plugin does not load under this pytest, so the
operations' strategies are driven with Hypothesis directly.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import token_for
from tests.api.test_api import gt_challenge, score_challenge
from tests.conftest import make_user

EXAMPLES_PER_OPERATION = 40


def test_no_generated_request_is_a_server_error(api_server):
    score_challenge(api_server)
    gt_challenge(api_server)
    token = token_for(api_server, make_user(api_server.db, "fuzzer"))
    schema = schemathesis.openapi.from_url(f"{api_server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    calls: list[tuple[str, int]] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def no_server_error(case) -> None:
            for headers in ({}, {"Authorization": f"Bearer {token}"}):
                response = case.call(base_url=f"{api_server.url}/api/v1", headers=headers)
                calls.append((case.operation.label, response.status_code))
                case.validate_response(response, checks=[not_a_server_error])
                assert response.status_code < 500, (case.operation.label, response.status_code, response.text)

        no_server_error()
    assert {label for label, _ in calls} == {op.label for op in operations}  # every operation was exercised
    assert any(status < 300 for _, status in calls)  # not only refusals: generated requests also succeeded
