"""Contract fuzzing: schemathesis generates requests from the app's own OpenAPI document, valid and invalid,
for every operation, as each role, in process (ASGI); every answer must be a declared status with a body
that matches its declared schema, and none may be a server error.

`make test` runs CONFRERE_FUZZ_EXAMPLES=2 examples per operation, mode and role, derandomized (the same
cases each run); `make fuzz` runs many more, randomized. What earlier runs found is kept as plain
regression tests in tests/test_fuzz_regressions.py. Results: docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.models.users import Role
from tests.conftest import Accounts, auth_headers, built_app, make_settings
from tests.e2ee_helpers import clinician, create_case

EXAMPLES = int(os.environ.get("CONFRERE_FUZZ_EXAMPLES", "2"))
DEEP = EXAMPLES > 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
ROLES = ("physician", "specialist", "compliance_officer", "admin")


@dataclass
class FuzzWorld:
    schema: schemathesis.BaseSchema
    headers: dict[str, dict[str, str]]


@dataclass
class Findings:
    cases: int = 0
    failures: dict[tuple[str, str, int], str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory, database_url: str, seed_rows) -> Iterator[FuzzWorld]:
    settings = make_settings(
        Path(tmp_path_factory.mktemp("fuzz")),
        database_url,
        # The limits have their own tests; here they would turn most of a role's requests into 429s.
        write_rate_per_minute=0,
        audit_exports_per_hour=0,
    )
    with built_app(settings, seed_rows) as app, TestClient(app) as client:
        accounts = Accounts(app=app, engine=app.state.runtime.engine)
        specialist = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
        physician = clinician(client, accounts, Role.PHYSICIAN)
        create_case(client, physician, specialist.devices, "fuzz", specialty="dermatology")
        headers = {
            "physician": physician.headers,
            "specialist": specialist.headers,
            "compliance_officer": auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER)),
            "admin": auth_headers(client, accounts.create(Role.ADMIN)),
        }
        yield FuzzWorld(schema=schemathesis.openapi.from_asgi("/openapi.json", app), headers=headers)


def _fuzz_operation(operation, mode: GenerationMode, headers: dict[str, str], findings: Findings) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not DEEP,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def run(case) -> None:
        findings.cases += 1
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as error:
            for failure in getattr(error, "exceptions", [error]):
                key = (operation.label, type(failure).__name__, response.status_code)
                findings.failures.setdefault(key, f"{failure}\n{response.text[:500]}")

    # Unsatisfiable: nothing to negate in an operation without parameters (health probes, JWKS).
    with contextlib.suppress(Unsatisfiable):
        run()


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_within_its_contract(fuzz_world: FuzzWorld, role: str):
    findings = Findings()
    for result in fuzz_world.schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, fuzz_world.headers[role], findings)
    print(f"fuzz {role}: {findings.cases} cases")  # read by `make fuzz` for docs/reliability.md
    assert findings.cases > 0
    report = "\n\n".join(f"{key}: {text}" for key, text in sorted(findings.failures.items()))
    assert not findings.failures, f"{len(findings.failures)} contract violations:\n{report}"
