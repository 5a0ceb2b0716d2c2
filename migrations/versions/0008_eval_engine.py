"""job.result: what a finished run produced beyond its checkpoints (its own evaluation summary)

Revision ID: 0008_eval_engine
Revises: 0007_race
Create Date: 2026-12-03 13:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobstore.types

# revision identifiers, used by Alembic.
revision: str = '0008_eval_engine'
down_revision: str | None = '0007_race'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        # existing rows get {} (the model's default for new rows)
        batch_op.add_column(sa.Column('result', jobstore.types.SafeJSON(), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('result')
