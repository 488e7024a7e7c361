"""Audit log: Merkle tree nodes, the sequencer's state, signed checkpoints, compliance exports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:06:37.739326
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('note', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size')
    )
    op.create_table('audit_log_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('compact_range', sa.LargeBinary(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(), nullable=False),
    sa.Column('checkpoint', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_log_state_single_row')),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit_tree_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('level', 'index')
    )
    op.create_table('audit_exports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('officer_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('parameters', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('record_count', sa.BigInteger(), nullable=False),
    sa.Column('file_path', sa.String(length=500), nullable=False),
    sa.Column('file_size', sa.BigInteger(), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_exports_officer_id'), ['officer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_exports_officer_id'))

    op.drop_table('audit_exports')
    op.drop_table('audit_tree_nodes')
    op.drop_table('audit_log_state')
    op.drop_table('audit_checkpoints')
