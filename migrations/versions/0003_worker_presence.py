"""worker presence: live workers and ocec-jobs up's notes (/readyz, job status)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import jobstore.types

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('worker_presence',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('started_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_presence'))
    )


def downgrade() -> None:
    op.drop_table('worker_presence')
