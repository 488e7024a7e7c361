"""One KEM public key, one device (issue 12): a unique index, so `409 key_in_use` holds under races too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fails, naming the key, where two devices already share a KEM key (possible before 0006's registration
    # checks): which account holds it is for an operator to find out, not for a migration to guess.
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index('uq_devices_kem_public_key', ['kem_public_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index('uq_devices_kem_public_key')
