"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 19:28:36.548326

"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import jobstore.types

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_key',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key'))
    )
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_key_prefix'), ['prefix'], unique=False)

    op.create_table('job',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('spec', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('state_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('parent_job_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('fork_from', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('stage_since_epoch', sa.Integer(), nullable=False),
    sa.Column('stage_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('epochs', sa.Integer(), nullable=False),
    sa.Column('best_f1', sa.Float(), nullable=True),
    sa.Column('best_epoch', sa.Integer(), nullable=True),
    sa.Column('latest_metrics', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('gate', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('lease_expires_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('progress_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('queued_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dispatch_count', sa.Integer(), nullable=False),
    sa.Column('infra_retries', sa.Integer(), nullable=False),
    sa.Column('resume_from', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('last_checkpoint', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('best_checkpoint', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('onnx_path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('run_dir', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('event_seq', sa.Integer(), nullable=False),
    sa.Column('created_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['parent_job_id'], ['job.id'], name=op.f('fk_job_parent_job_id_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job')),
    sa.UniqueConstraint('owner', 'idempotency_key', name='uq_job_owner_idempotency_key')
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_created_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_job_state_lease', ['state', 'lease_expires_at'], unique=False)
        batch_op.create_index('ix_job_state_priority_queued', ['state', 'priority', 'queued_at'], unique=False)

    op.create_table('upload',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('meta', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('created_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upload'))
    )
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_sha256'), ['sha256'], unique=False)

    op.create_table('attempt',
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('worker', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('gpu', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('started_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('resumed_from', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('restored_epoch', sa.Integer(), nullable=True),
    sa.Column('restored_stage', sa.Integer(), nullable=True),
    sa.Column('restored_batch', sa.Integer(), nullable=True),
    sa.Column('restored_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_attempt_job_id_job')),
    sa.PrimaryKeyConstraint('job_id', 'number', name=op.f('pk_attempt'))
    )
    op.create_table('checkpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('val_f1', sa.Float(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('superseded', sa.Boolean(), nullable=False),
    sa.Column('created_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_checkpoint_job_id_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoint')),
    sa.UniqueConstraint('job_id', 'path', name='uq_checkpoint_job_id_path')
    )
    op.create_table('command',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('params', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('command_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('result', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('requested_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('applied_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('applied_epoch', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_command_job_id_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_command')),
    sa.UniqueConstraint('job_id', 'command_key', name='uq_command_job_id_command_key')
    )
    op.create_table('epoch_metric',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('superseded', sa.Boolean(), nullable=False),
    sa.Column('superseded_at', jobstore.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('train_loss', sa.Float(), nullable=True),
    sa.Column('val_loss', sa.Float(), nullable=True),
    sa.Column('val_f1', sa.Float(), nullable=True),
    sa.Column('val_precision', sa.Float(), nullable=True),
    sa.Column('val_recall', sa.Float(), nullable=True),
    sa.Column('val_accuracy', sa.Float(), nullable=True),
    sa.Column('fisher_ratio', sa.Float(), nullable=True),
    sa.Column('train_f1', sa.Float(), nullable=True),
    sa.Column('lrs', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('trainable_params', sa.Integer(), nullable=True),
    sa.Column('epoch_seconds', sa.Float(), nullable=True),
    sa.Column('samples_per_sec', sa.Float(), nullable=True),
    sa.Column('extra', jobstore.types.SafeJSON(), nullable=False),
    sa.Column('recorded_at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_epoch_metric_job_id_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_epoch_metric'))
    )
    with op.batch_alter_table('epoch_metric', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_epoch_metric_job_id'), ['job_id'], unique=False)
        batch_op.create_index('uq_epoch_metric_live', ['job_id', 'epoch'], unique=True, sqlite_where=sa.text('superseded = 0'), postgresql_where=sa.text('superseded = false'))

    op.create_table('job_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('at', jobstore.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('stage', sa.Integer(), nullable=True),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('from_stage', sa.Integer(), nullable=True),
    sa.Column('to_stage', sa.Integer(), nullable=True),
    sa.Column('command_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('evidence', jobstore.types.SafeJSON(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_job_event_job_id_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_event')),
    sa.UniqueConstraint('job_id', 'seq', name='uq_job_event_job_id_seq')
    )


def downgrade() -> None:
    op.drop_table('job_event')
    with op.batch_alter_table('epoch_metric', schema=None) as batch_op:
        batch_op.drop_index('uq_epoch_metric_live', sqlite_where=sa.text('superseded = 0'), postgresql_where=sa.text('superseded = false'))
        batch_op.drop_index(batch_op.f('ix_epoch_metric_job_id'))

    op.drop_table('epoch_metric')
    op.drop_table('command')
    op.drop_table('checkpoint')
    op.drop_table('attempt')
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_sha256'))

    op.drop_table('upload')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_state_priority_queued')
        batch_op.drop_index('ix_job_state_lease')
        batch_op.drop_index('ix_job_created_id')

    op.drop_table('job')
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_key_prefix'))

    op.drop_table('api_key')
