"""The device directory log (key transparency): entries written with the changes they record, sequenced and
signed in the same transaction, and the proofs carried by the answers that name devices
(docs/key-transparency.md)."""
