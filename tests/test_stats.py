"""GET /v1/admin/stats: counts and percentiles per specialty from clear metadata, for admins only."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import update

from app.models.base import utcnow
from app.models.cases import Case
from app.models.users import Role
from app.runtime.database import transaction
from app.services.stats import percentile
from tests.conftest import assert_problem, auth_headers
from tests.e2ee_helpers import clinician, create_case
from tests.notification_helpers import move

HOUR = 3600.0


def set_times(engine, case_id: str, **times) -> None:
    with transaction(engine) as session:
        session.execute(update(Case).where(Case.id == uuid.UUID(case_id)).values(**times))


def test_percentiles_interpolate_between_ranks():
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 3.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9.1


def test_stats_per_specialty(client, accounts, engine):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
    cardio = clinician(client, accounts, Role.SPECIALIST, specialties=("cardiology",))
    answered, claimed, waiting, old = (
        create_case(client, physician, derm.devices, specialty="dermatology")["id"] for _ in range(4)
    )
    create_case(client, physician, cardio.devices, specialty="cardiology")
    for case in (answered, claimed, old):
        move(client, derm, case, "claim")
    start = utcnow() - timedelta(days=1)
    set_times(
        engine,
        answered,
        created_at=start,
        claimed_at=start + timedelta(hours=1),
        answered_at=start + timedelta(hours=10),
        status="answered",
    )
    set_times(engine, claimed, created_at=start, claimed_at=start + timedelta(hours=3))
    set_times(engine, waiting, due_at=utcnow() - timedelta(hours=1))  # overdue
    long_ago = utcnow() - timedelta(days=200)
    set_times(engine, old, created_at=long_ago, claimed_at=long_ago + timedelta(hours=50), status="closed")

    admin = accounts.create(Role.ADMIN)
    headers = auth_headers(client, admin)
    response = client.get("/v1/admin/stats", headers=headers)
    assert response.status_code == 200, response.text
    by_code = {row["specialty"]: row for row in response.json()["specialties"]}
    assert by_code["dermatology"] == {
        "specialty": "dermatology",
        "open_cases": 1,
        "in_progress_cases": 1,
        "overdue_cases": 1,
        "time_to_claim": {"cases": 2, "median_seconds": 2 * HOUR, "p90_seconds": 2.8 * HOUR},
        "time_to_answer": {"cases": 1, "median_seconds": 10 * HOUR, "p90_seconds": 10 * HOUR},
    }
    assert by_code["cardiology"]["open_cases"] == 1
    assert by_code["cardiology"]["time_to_claim"] == {"cases": 0, "median_seconds": None, "p90_seconds": None}
    assert all(
        row["open_cases"] == 0 for code, row in by_code.items() if code not in ("dermatology", "cardiology")
    )

    # A longer window takes the old case in.
    year = client.get("/v1/admin/stats", params={"days": 366}, headers=headers).json()
    derm_year = next(row for row in year["specialties"] if row["specialty"] == "dermatology")
    assert derm_year["time_to_claim"]["cases"] == 3
    assert derm_year["time_to_claim"]["median_seconds"] == 3 * HOUR

    assert_problem(client.get("/v1/admin/stats", headers=physician.headers), 403, "role_required")
    assert_problem(client.get("/v1/admin/stats", params={"days": 0}, headers=headers), 422, "invalid_input")
