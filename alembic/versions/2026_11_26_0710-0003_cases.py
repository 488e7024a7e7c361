"""Cases: devices and their registration challenges, key backups, cases, sealed objects, envelopes, shares.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('requester_id', sa.Uuid(), nullable=False),
    sa.Column('specialty', sa.String(length=40), nullable=False),
    sa.Column('named_specialist_id', sa.Uuid(), nullable=True),
    sa.Column('assignee_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('priority', sa.String(length=10), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('patient_consent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decline_reason', sa.String(length=30), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['named_specialist_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['specialty'], ['specialties.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_assignee_created', ['assignee_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_cases_named_created', ['named_specialist_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_cases_queue', ['specialty', 'status', 'due_at', 'id'], unique=False)
        batch_op.create_index('ix_cases_requester_created', ['requester_id', 'created_at', 'id'], unique=False)

    op.create_table('device_challenges',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('challenge', sa.LargeBinary(length=32), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('device_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_challenges_user_id'), ['user_id'], unique=False)

    op.create_table('devices',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('suite', sa.String(length=10), nullable=False),
    sa.Column('signing_public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kem_public_key', sa.LargeBinary(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('signing_public_key')
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_user_id'), ['user_id'], unique=False)

    op.create_table('key_backups',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('blob', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('case_objects',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('author_device_id', sa.Uuid(), nullable=False),
    sa.Column('header', sa.LargeBinary(), nullable=False),
    sa.Column('manifest', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('ciphertext_sha256', sa.String(length=64), nullable=False),
    sa.Column('ciphertext_size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_device_id'], ['devices.id'], ),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_objects', schema=None) as batch_op:
        batch_op.create_index('ix_case_objects_case_created', ['case_id', 'created_at', 'id'], unique=False)

    op.create_table('case_shares',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('recipient_id', sa.Uuid(), nullable=False),
    sa.Column('sharer_id', sa.Uuid(), nullable=False),
    sa.Column('sharer_device_id', sa.Uuid(), nullable=False),
    sa.Column('statement', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('grants_access', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['sharer_device_id'], ['devices.id'], ),
    sa.ForeignKeyConstraint(['sharer_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_shares_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_case_shares_recipient_case', ['recipient_id', 'case_id'], unique=False)

    op.create_table('envelopes',
    sa.Column('object_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=False),
    sa.Column('share_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.ForeignKeyConstraint(['object_id'], ['case_objects.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['share_id'], ['case_shares.id'], ),
    sa.PrimaryKeyConstraint('object_id', 'device_id')
    )


def downgrade() -> None:
    op.drop_table('envelopes')
    with op.batch_alter_table('case_shares', schema=None) as batch_op:
        batch_op.drop_index('ix_case_shares_recipient_case')
        batch_op.drop_index(batch_op.f('ix_case_shares_case_id'))

    op.drop_table('case_shares')
    with op.batch_alter_table('case_objects', schema=None) as batch_op:
        batch_op.drop_index('ix_case_objects_case_created')

    op.drop_table('case_objects')
    op.drop_table('key_backups')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devices_user_id'))

    op.drop_table('devices')
    with op.batch_alter_table('device_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_challenges_user_id'))

    op.drop_table('device_challenges')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_requester_created')
        batch_op.drop_index('ix_cases_queue')
        batch_op.drop_index('ix_cases_named_created')
        batch_op.drop_index('ix_cases_assignee_created')

    op.drop_table('cases')
