// Errors carry the stable snake_case `code` of docs/api.md section 10 and docs/e2ee.md section 14; the UI
// branches on codes and shows the sentences below, never the server's English `detail` alone.

export class E2EEError extends Error {
  constructor(code, message) {
    super(message || code.replaceAll("_", " "));
    this.code = code;
  }
}

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail ? `${status} ${code}: ${detail}` : `${status} ${code}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

const MESSAGES = {
  // Session and account
  invalid_credentials: "Wrong e-mail, password or authenticator code.",
  totp_required: "Enter the 6-digit code from your authenticator app.",
  invalid_totp: "That authenticator code is not valid. Wait for the next one and try again.",
  account_not_active: "Your account is not active yet (an administrator must verify it) or is suspended.",
  account_locked: "Too many failed attempts: the account is locked for a while. Try again later.",
  too_many_requests: "Too many attempts. Wait a minute and try again.",
  rate_limited: "Too many requests in a short time. Wait a moment and try again.",
  mfa_required: "This account must enable two-factor authentication first.",
  invalid_refresh_token: "Your session has ended. Log in again.",
  refresh_token_reused: "Your session was ended for safety. Log in again.",
  unauthenticated: "Your session has ended. Log in again.",
  invalid_token: "Your session has ended. Log in again.",
  role_required: "Your role does not allow this (physician or specialist accounts only).",
  // Devices
  device_exists: "This device's keys are registered already.",
  key_in_use: "These keys are registered to another account.",
  invalid_kem_proof: "The registration could not prove this browser holds its encryption key. Try again.",
  invalid_challenge: "The registration challenge was refused. Try again.",
  challenge_expired: "The registration took too long. Try again.",
  invalid_key: "A public key was refused as malformed.",
  no_device: "This browser is not registered as a device yet.",
  device_revoked: "This browser's device was revoked. Register it again.",
  // Cases and thread
  case_not_found: "This case does not exist or you may not see it.",
  attachment_not_found: "The attachment is missing.",
  specialty_not_found: "This specialty does not exist.",
  unknown_specialty: "This specialty does not exist.",
  user_not_found: "This colleague cannot be found.",
  consent_in_future: "The patient's consent cannot be in the future.",
  already_claimed: "A colleague claimed this case first.",
  illegal_transition: "The case has moved on in the meantime. It has been reloaded.",
  transition_not_allowed: "Your part in this case does not allow this step.",
  write_not_allowed: "Your part in this case does not allow writing to it.",
  case_closed: "This case is closed: nothing more can be written to it.",
  report_required: "Send the report before answering.",
  payload_too_large: "This is too large to upload.",
  recipient_not_eligible: "One of the recipients may not receive this case.",
  no_recipients: "No specialist of this specialty has registered a device yet.",
  invalid_input: "Some fields are missing or not valid.",
  empty_text: "Write the text first.",
  reason_required: "Choose a reason for declining first.",
  // Encryption (docs/e2ee.md section 14)
  unknown_suite: "Encrypted with an unknown suite.",
  suite_mismatch: "Refused: this device's key envelope is labelled with another suite.",
  no_envelope: "This device holds no key for this item (it was sealed before this device existed).",
  not_canonical: "Refused: the signed data is malformed.",
  invalid_header: "Refused: the encrypted item's header is malformed.",
  invalid_manifest: "Refused: the encrypted item's manifest is malformed.",
  invalid_signature: "Refused: the author's signature does not verify.",
  context_mismatch: "Refused: this item was signed for another case or place than where it was shown.",
  header_mismatch: "Refused: the signature covers another item.",
  ciphertext_size_mismatch: "Refused: the content differs from what the author signed.",
  ciphertext_hash_mismatch: "Refused: the content differs from what the author signed.",
  envelope_length: "Refused: a key envelope is malformed.",
  envelope_set_mismatch: "Refused: this device's key envelope is not the one the author signed.",
  envelope_hash_mismatch: "Refused: a key envelope differs from what the author signed.",
  decryption_failed: "Refused: the content does not decrypt with this device's key.",
  key_commitment_mismatch: "Refused: the key does not match the author's key commitment.",
  // Transport
  network_error: "The server cannot be reached. Check the connection and try again.",
};

export function describe(error) {
  if (error && MESSAGES[error.code]) return MESSAGES[error.code];
  if (error instanceof ApiError) return `The server refused the request (${error.code}).`;
  return `Unexpected error: ${error?.message ?? error}`;
}
