"""Foundation: accounts, roles, specialties (seeded), login sessions, audit records.

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 05:58:32.487087
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SNOMED CT codes from the "practice setting" / doctor specialty value set (descendants of 394658006).
SEED_SPECIALTIES = [
    ("cardiology", "Cardiology", "394579002"),
    ("dermatology", "Dermatology", "394582007"),
    ("endocrinology", "Endocrinology", "394583002"),
    ("gastroenterology", "Gastroenterology", "394584008"),
    ("geriatrics", "Geriatric medicine", "394811001"),
    ("hematology", "Clinical hematology", "394803006"),
    ("infectious-diseases", "Infectious diseases", "394807007"),
    ("nephrology", "Nephrology", "394589003"),
    ("neurology", "Neurology", "394591006"),
    ("obstetrics-gynecology", "Obstetrics and gynecology", "394585009"),
    ("oncology", "Medical oncology", "394593009"),
    ("ophthalmology", "Ophthalmology", "394594003"),
    ("ent", "Ear, nose and throat surgery", "394604002"),
    ("pediatrics", "Pediatric specialty", "394537008"),
    ("psychiatry", "Psychiatry", "394587001"),
    ("pulmonology", "Pulmonary medicine", "418112009"),
    ("radiology", "Radiology", "394914008"),
    ("rheumatology", "Rheumatology", "394810000"),
    ("orthopedics", "Trauma and orthopedics", "394801008"),
    ("urology", "Urology", "394612005"),
]


def upgrade() -> None:
    op.create_table('audit_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=True),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('case_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('position')
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_records_action'), ['action'], unique=False)
        batch_op.create_index('ix_audit_records_actor_time', ['actor_id', 'event_time'], unique=False)
        batch_op.create_index('ix_audit_records_case_time', ['case_id', 'event_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_records_event_time'), ['event_time'], unique=False)
        batch_op.create_index('ix_audit_records_position_id', ['position', 'id'], unique=False)

    op.create_table('login_throttles',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('specialties',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('snomed_code', sa.String(length=18), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code'),
    sa.UniqueConstraint('snomed_code')
    )
    specialties = sa.table(
        "specialties",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("snomed_code", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    seeded_at = datetime(2026, 11, 26)
    op.bulk_insert(
        specialties,
        [
            {"code": code, "name": name, "snomed_code": snomed, "active": True, "created_at": seeded_at}
            for code, name, snomed in SEED_SPECIALTIES
        ],
    )
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('professional_id_kind', sa.String(length=10), nullable=True),
    sa.Column('professional_id', sa.String(length=20), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verified_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('totp_secret_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('totp_confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('professional_id_kind', 'professional_id')
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_email'), ['email'], unique=True)
        batch_op.create_index(batch_op.f('ix_users_status'), ['status'], unique=False)

    op.create_table('auth_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('amr', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoke_reason', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('user_roles',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'role')
    )
    op.create_table('user_specialties',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('specialty_code', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['specialty_code'], ['specialties.code'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'specialty_code')
    )
    with op.batch_alter_table('user_specialties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_specialties_specialty_code'), ['specialty_code'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['auth_sessions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_session_id'))

    op.drop_table('refresh_tokens')
    with op.batch_alter_table('user_specialties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_specialties_specialty_code'))

    op.drop_table('user_specialties')
    op.drop_table('user_roles')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_sessions_user_id'))

    op.drop_table('auth_sessions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_status'))
        batch_op.drop_index(batch_op.f('ix_users_email'))

    op.drop_table('users')
    op.drop_table('specialties')
    op.drop_table('login_throttles')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_records_position_id')
        batch_op.drop_index(batch_op.f('ix_audit_records_event_time'))
        batch_op.drop_index('ix_audit_records_case_time')
        batch_op.drop_index('ix_audit_records_actor_time')
        batch_op.drop_index(batch_op.f('ix_audit_records_action'))

    op.drop_table('audit_records')
