// Format checks of professional ids as the server makes them (app/schemas/professional_ids.py): French
// RPPS (11 digits) and ADELI (9 digits), US NPI (10 digits), all Luhn-checked, NPI over the issuer prefix
// 80840. Which kinds a profession registers with comes from the server (`GET /v1/professions`).

const LENGTH = { rpps: 11, adeli: 9, npi: 10 };
const NPI_PREFIX = "80840";

function luhnValid(digits) {
  let total = 0;
  [...digits].reverse().forEach((char, position) => {
    let value = Number(char);
    if (position % 2 === 1) value = value > 4 ? value * 2 - 9 : value * 2;
    total += value;
  });
  return total % 10 === 0;
}

export function professionalIdValid(kind, value) {
  if (!/^[0-9]+$/.test(value) || value.length !== LENGTH[kind]) return false;
  return luhnValid(kind === "npi" ? NPI_PREFIX + value : value);
}
