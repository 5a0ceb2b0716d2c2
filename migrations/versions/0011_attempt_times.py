"""attempt indexes: the latest claim and the latest end without a scan of every attempt

Revision ID: 0011_attempt_times
Revises: 0010_eval_reaper
Create Date: 2026-12-03 19:40:00

The reaper's queue view (``jobstore.repo.workers.queue_view``, read when queued jobs wait past the
re-send window) asks ``max(started_at)`` and ``max(ended_at)`` over every attempt; with these
indexes each is one index lookup (``benchmarks/read_paths.py`` prints the plans).
"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0011_attempt_times'
down_revision: str | None = '0010_eval_reaper'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_attempt_started_at', 'attempt', ['started_at'], unique=False)
    op.create_index('ix_attempt_ended_at', 'attempt', ['ended_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_attempt_ended_at', table_name='attempt')
    op.drop_index('ix_attempt_started_at', table_name='attempt')
