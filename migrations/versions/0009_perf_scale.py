"""read-path indexes: jobs by state or parent newest first, a job's metrics in epoch order

Revision ID: 0009_perf_scale
Revises: 0008_eval_engine
Create Date: 2026-12-03 12:40:00

``GET /jobs/{id}`` lists a job's forks (by ``parent_job_id``) and its recent epochs; without these
indexes the first scanned the whole job table and the second sorted all of the job's metrics rows
(``benchmarks/read_paths.py`` prints the plans). ``ix_epoch_metric_job_epoch`` starts with
``job_id``, so it replaces the single-column index.
"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009_perf_scale'
down_revision: str | None = '0008_eval_engine'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_job_state_created', 'job', ['state', 'created_at', 'id'], unique=False)
    op.create_index('ix_job_parent_created', 'job', ['parent_job_id', 'created_at', 'id'], unique=False)
    op.create_index(
        'ix_epoch_metric_job_epoch', 'epoch_metric', ['job_id', 'epoch', 'superseded', 'id'], unique=False
    )
    op.drop_index(op.f('ix_epoch_metric_job_id'), table_name='epoch_metric')


def downgrade() -> None:
    op.create_index(op.f('ix_epoch_metric_job_id'), 'epoch_metric', ['job_id'], unique=False)
    op.drop_index('ix_epoch_metric_job_epoch', table_name='epoch_metric')
    op.drop_index('ix_job_parent_created', table_name='job')
    op.drop_index('ix_job_state_created', table_name='job')
