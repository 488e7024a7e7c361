"""Hardening (issue 14): a professional id is unique among verified accounts only; the login lockout moves
from the user row to login_throttles, per e-mail and address; witness cosignatures of audit checkpoints.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps 0001's constraint unnamed; batch mode rebuilds the table and names it by the models' rule.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PROFESSIONAL_ID_CONSTRAINT = "uq_users_professional_id_kind"
VERIFIED = sa.text("verified_at IS NOT NULL")


def upgrade() -> None:
    op.create_table('audit_cosignatures',
    sa.Column('witness', sa.String(length=200), nullable=False),
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('signature_line', sa.Text(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('witness', 'size')
    )
    with op.batch_alter_table('users', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(PROFESSIONAL_ID_CONSTRAINT, type_='unique')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')
        batch_op.create_index(
            'uq_users_verified_professional_id',
            ['professional_id_kind', 'professional_id'],
            unique=True,
            postgresql_where=VERIFIED,
            sqlite_where=VERIFIED,
        )


def downgrade() -> None:
    op.drop_table('audit_cosignatures')
    with op.batch_alter_table('users', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_index('uq_users_verified_professional_id')
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_unique_constraint(
            PROFESSIONAL_ID_CONSTRAINT, ['professional_id_kind', 'professional_id']
        )
