"""race: stage-2 recipes raced from one stage 1

Revision ID: 0007_race
Revises: 0006_eval_service
Create Date: 2026-12-03 12:30:08.199076

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import jobstore.types

# revision identifiers, used by Alembic.
revision: str = "0007_race"
down_revision: str | None = '0006_eval_service'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "race",
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("plan", jobstore.types.SafeJSON(), nullable=False),
        sa.Column("candidates", jobstore.types.SafeJSON(), nullable=False),
        sa.Column("rungs", jobstore.types.SafeJSON(), nullable=False),
        sa.Column("next_rung", sa.Integer(), nullable=False),
        sa.Column("winner", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("sample_epochs", sa.BigInteger(), nullable=False),
        sa.Column("keys", jobstore.types.SafeJSON(), nullable=False),
        sa.Column("created_at", jobstore.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", jobstore.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", jobstore.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_race_job_id_job")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_race")),
    )


def downgrade() -> None:
    op.drop_table("race")
