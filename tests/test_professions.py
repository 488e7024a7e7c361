"""Professions: registration with the identifiers each profession uses (ADELI checked like RPPS), the
public list, the profession in answers, and clinical roles kept to physicians."""

from __future__ import annotations

from app.models.users import Profession, Role
from app.schemas.professional_ids import is_valid, luhn_valid
from tests.circle_helpers import professional
from tests.conftest import assert_problem, auth_headers
from tests.test_auth import REGISTRATION

ADELI = "751234568"  # 9 digits, Luhn-valid
NURSE = REGISTRATION | {
    "email": "infirmiere@example.org",
    "display_name": "Camille Petit",
    "profession": "nurse",
    "professional_id_kind": "adeli",
    "professional_id": ADELI,
    "roles": [],
}


def test_adeli_numbers_are_nine_luhn_checked_digits():
    assert luhn_valid(ADELI)
    assert is_valid("adeli", ADELI)  # type: ignore[arg-type]
    for wrong in ("751234567", "75123456", "7512345680", "75123456a"):
        assert not is_valid("adeli", wrong), wrong  # type: ignore[arg-type]


def test_a_nurse_registers_with_an_adeli_number_and_no_clinical_role(client):
    response = client.post("/v1/auth/register", json=NURSE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["profession"], body["professional_id_kind"], body["roles"]) == ("nurse", "adeli", [])
    physician = client.post("/v1/auth/register", json=REGISTRATION)
    assert physician.json()["profession"] == "physician"  # the default: physicians register as before


def test_registration_refuses_what_a_profession_does_not_use(client):
    cases = [
        ({"professional_id": "751234567"}, "professional_id"),  # Luhn check fails
        ({"roles": ["physician"]}, "only physicians"),
        ({"specialties": ["dermatology"]}, "only physicians"),
        ({"profession": "midwife"}, "adeli"),  # midwives are in the RPPS only
        ({"profession": "physician", "roles": ["physician"]}, "adeli"),
        ({"profession": "astrologer"}, "profession"),
    ]
    for change, hint in cases:
        response = client.post("/v1/auth/register", json=NURSE | change)
        assert_problem(response, 422, "invalid_input")
        assert hint.lower() in response.text.lower(), (change, response.text)
    no_role = client.post("/v1/auth/register", json=REGISTRATION | {"roles": []})
    assert "physician registers with" in assert_problem(no_role, 422, "invalid_input")["errors"][0]["msg"]


def test_the_professions_list_is_public(client):
    response = client.get("/v1/professions")
    assert response.status_code == 200
    listed = {item["code"]: item for item in response.json()}
    assert set(listed) == {profession.value for profession in Profession}
    assert listed["nurse"]["id_kinds"] == ["rpps", "adeli", "npi"]
    assert listed["physician"]["id_kinds"] == ["rpps", "npi"]
    assert listed["psychologist"]["name_fr"] == "Psychologue"


def test_the_profession_shows_and_only_physicians_hold_clinical_roles(client, accounts):
    nurse = professional(client, accounts, Profession.NURSE)
    assert client.get("/v1/me", headers=nurse.person.headers).json()["profession"] == "nurse"
    # A nurse has no case role: cases stay physicians' (and the directory of clinicians lists physicians).
    assert_problem(client.get("/v1/cases", headers=nurse.person.headers), 403, "role_required")
    admin = accounts.create(Role.ADMIN)
    admin_headers = auth_headers(client, admin)
    refused = client.put(
        f"/v1/admin/users/{nurse.id}/roles",
        json={"roles": ["specialist"], "specialties": ["dermatology"]},
        headers=admin_headers,
    )
    assert_problem(refused, 422, "clinical_role_not_allowed")
    physician = professional(client, accounts, Profession.PHYSICIAN)
    names = client.get(f"/v1/clinicians?id={physician.id}", headers=physician.person.headers).json()
    assert names["clinicians"][0]["profession"] == "physician"
    # Nurses and physicians both use circles and their events.
    assert client.get("/v1/circles", headers=nurse.person.headers).status_code == 200
    assert client.get("/v1/events", headers=nurse.person.headers).status_code == 200
