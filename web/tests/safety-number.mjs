// Prints the web client's safety numbers (src/safety.js) for the users and devices given as JSON on stdin,
// so that tests/test_web_trust.py compares them with the reference client's (app/crypto/directory.py).

import { text } from "node:stream/consumers";

import { safetyNumber } from "../src/safety.js";

const users = JSON.parse(await text(process.stdin));
const numbers = [];
for (const { user_id: userId, devices } of users) numbers.push(await safetyNumber(userId, devices));
process.stdout.write(JSON.stringify(numbers));
