"""evaluation: models scored on datasets by a worker

Revision ID: 0006_eval_service
Revises: 0005_retain
Create Date: 2026-12-03 12:28:17.048619

"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import jobstore.types

# revision identifiers, used by Alembic.
revision: str = '0006_eval_service'
down_revision: str | None = '0005_retain'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('evaluation',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('state_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('model_root', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('model_path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('data_path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('split', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('threshold_rule', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('threshold_target', sa.Float(), nullable=True),
    sa.Column('top_k', sa.Integer(), nullable=False),
    sa.Column('out_dir', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('progress', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('report', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('worker', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('created_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation'))
    )
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.create_index('ix_evaluation_created_id', ['created_at', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluation_created_id')

    op.drop_table('evaluation')
