"""Format checks for professional identifiers: French RPPS and US NPI, both Luhn-checked."""

from __future__ import annotations

from app.models.users import ProfessionalIdKind

# NPI check digits are computed over the number prefixed with the health-industry issuer code 80840.
NPI_LUHN_PREFIX = "80840"
LENGTHS = {ProfessionalIdKind.RPPS: 11, ProfessionalIdKind.NPI: 10}


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
