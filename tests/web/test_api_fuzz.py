"""Schemathesis over the whole OpenAPI with an admin token: generated requests (valid by the schema and
deliberately invalid ones) must never get a 5xx. Bounded: a few examples per operation, no shrinking,
so the run takes about a minute on two cores.

Excluded are only the operations that could end the run's own credentials: revoking a token (the
admin's is one of them) and editing a user (the admin could be deactivated or demoted).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

#: Examples drawn per operation and mode; 123 operations x 2 modes x 2 = about 500 requests.
EXAMPLES_PER_OPERATION = 2
OWN_CREDENTIALS = {("DELETE", "/api/v1/tokens/{token_id}"), ("PATCH", "/api/v1/users/{user_id}")}


def test_no_generated_request_gets_a_server_error(app, world):
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    headers = world.auth("admin")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in OWN_CREDENTIALS:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case) -> None:
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query or ''} "
                                    f"{str(case.body)[:200]} -> {response.status_code} {response.text[:200]}")

            try:
                call()
            except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
                continue
    assert operations > 100
    assert failures == []
