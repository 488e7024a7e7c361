"""The device directory log (key transparency): entries and their Merkle log, shaped like the audit log's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:34:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('directory_checkpoints',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('note', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size')
    )
    op.create_table('directory_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=True),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.Column('entry_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('position')
    )
    with op.batch_alter_table('directory_entries', schema=None) as batch_op:
        batch_op.create_index('ix_directory_entries_device_action', ['device_id', 'action'], unique=False)
        batch_op.create_index('ix_directory_entries_position_id', ['position', 'id'], unique=False)
        batch_op.create_index('ix_directory_entries_user_position', ['user_id', 'position'], unique=False)

    op.create_table('directory_log_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('compact_range', sa.LargeBinary(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(), nullable=False),
    sa.Column('checkpoint', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_directory_log_state_single_row')),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('directory_tree_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('level', 'index')
    )


def downgrade() -> None:
    op.drop_table('directory_tree_nodes')
    op.drop_table('directory_log_state')
    with op.batch_alter_table('directory_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_entries_user_position')
        batch_op.drop_index('ix_directory_entries_position_id')
        batch_op.drop_index('ix_directory_entries_device_action')

    op.drop_table('directory_entries')
    op.drop_table('directory_checkpoints')
