"""inbox received_at index: pruning seen message ids by age without scanning the table

Revision ID: 21c89e0d4bd4
Revises: 8f98a9fd56ec
Create Date: 2026-12-01 07:50:18.163606
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "21c89e0d4bd4"
down_revision = "8f98a9fd56ec"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_received_at", ["received_at"], unique=False)


def downgrade():
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_received_at")
