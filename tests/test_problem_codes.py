"""Refusals and problem codes: every refusal a policy can give answers with a typed error, and a client that
branches on `code` never meets one code with two statuses."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import pytest

import app
from app.errors import REFUSALS, AppError, Refusal, refused
from app.runtime import problem_handlers

E2EE_DOC = Path(__file__).resolve().parents[1] / "docs" / "e2ee.md"


def _all_error_classes() -> list[type[AppError]]:
    # Errors live beside the services that raise them: import every module of the app to see them all.
    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)
    found, pending = [], [AppError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _e2ee_codes() -> set[str]:
    """The format's refusals (docs/e2ee.md section 14), which the API answers as 422 (SealedRefused)."""
    section = E2EE_DOC.read_text().split("## 14. Error codes")[1].split("\n## ")[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {code for row in rows for code in re.findall(r"`([a-z_]+)`", row)}


def test_the_mapping_covers_every_refusal_and_nothing_else() -> None:
    assert set(REFUSALS) == set(Refusal)


@pytest.mark.parametrize("reason", list(Refusal))
def test_every_refusal_answers_with_a_typed_error(reason: Refusal) -> None:
    error = refused(reason)
    assert isinstance(error, AppError)
    assert 400 <= error.status < 500
    assert error.code not in {AppError.code, "forbidden", "not_found", "conflict", "invalid_input"}
    assert error.title and error.detail


def test_refusals_of_case_visibility_answer_like_a_missing_case() -> None:
    for reason in (Refusal.NOT_A_CLINICIAN, Refusal.NOT_VISIBLE):
        assert (refused(reason).status, refused(reason).code) == (404, "case_not_found")


def test_every_problem_code_has_one_status() -> None:
    statuses: dict[str, set[int]] = defaultdict(set)
    for cls in _all_error_classes():
        statuses[cls.code].add(cls.status)
    for code in _e2ee_codes():
        statuses[code].add(422)
    for status, code in problem_handlers._HTTP_CODES.items():
        statuses[code].add(status)
    statuses["internal_error"].add(500)
    assert {"invalid_totp", "case_not_found", "invalid_signature", "not_found"} <= set(statuses)
    shared = {code: sorted(found) for code, found in statuses.items() if len(found) > 1}
    assert shared == {}
