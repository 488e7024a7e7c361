"""Format checks for professional identifiers (French RPPS and ADELI, US NPI, all Luhn-checked) and which
identifiers each profession registers with."""

from __future__ import annotations

from dataclasses import dataclass

from app.models.users import Profession, ProfessionalIdKind

# NPI check digits are computed over the number prefixed with the health-industry issuer code 80840.
NPI_LUHN_PREFIX = "80840"
LENGTHS = {ProfessionalIdKind.RPPS: 11, ProfessionalIdKind.ADELI: 9, ProfessionalIdKind.NPI: 10}


@dataclass(frozen=True)
class ProfessionInfo:
    code: Profession
    name_fr: str
    name_en: str
    id_kinds: tuple[ProfessionalIdKind, ...]


_RPPS, _ADELI, _NPI = ProfessionalIdKind.RPPS, ProfessionalIdKind.ADELI, ProfessionalIdKind.NPI
# Every profession is in the RPPS in France; ADELI still applies where the RPPS migration is not complete
# (nurses, psychologists, physiotherapists).
PROFESSIONS: dict[Profession, ProfessionInfo] = {
    info.code: info
    for info in (
        ProfessionInfo(Profession.PHYSICIAN, "Médecin", "Physician", (_RPPS, _NPI)),
        ProfessionInfo(Profession.NURSE, "Infirmier·ère", "Nurse", (_RPPS, _ADELI, _NPI)),
        ProfessionInfo(Profession.PSYCHOLOGIST, "Psychologue", "Psychologist", (_RPPS, _ADELI, _NPI)),
        ProfessionInfo(Profession.MIDWIFE, "Sage-femme", "Midwife", (_RPPS, _NPI)),
        ProfessionInfo(Profession.PHARMACIST, "Pharmacien·ne", "Pharmacist", (_RPPS, _NPI)),
        ProfessionInfo(
            Profession.PHYSIOTHERAPIST, "Masseur-kinésithérapeute", "Physiotherapist", (_RPPS, _ADELI, _NPI)
        ),
    )
}


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_valid(kind: ProfessionalIdKind, value: str) -> bool:
    if len(value) != LENGTHS[kind] or not value.isascii() or not value.isdigit():
        return False
    return luhn_valid(NPI_LUHN_PREFIX + value if kind is ProfessionalIdKind.NPI else value)


def allows(profession: Profession, kind: ProfessionalIdKind) -> bool:
    return kind in PROFESSIONS[profession].id_kinds
