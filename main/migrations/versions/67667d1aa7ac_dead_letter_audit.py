"""dead_letter_audit: who retried, discarded or archived which dead letter, when and why

Revision ID: 67667d1aa7ac
Revises: 5e2a91c7d3b0
Create Date: 2026-12-06 16:34:55.468161

An archive row keeps the message (body and headers) in MEDIUMTEXT on MariaDB: an archived body
may be up to 64 KiB of text, more bytes than TEXT holds.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "67667d1aa7ac"  # pragma: allowlist secret
down_revision = "5e2a91c7d3b0"  # pragma: allowlist secret
branch_labels = None
depends_on = None


def _long_text():
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mariadb").with_variant(mysql.MEDIUMTEXT(), "mysql")


def upgrade():
    op.create_table(
        "dead_letter_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("event_type", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=150), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column(
            "at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column("body", _long_text(), nullable=True),
        sa.Column("headers", _long_text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dead_letter_audit", schema=None) as batch_op:
        batch_op.create_index("ix_dead_letter_audit_message_id", ["message_id"], unique=False)


def downgrade():
    with op.batch_alter_table("dead_letter_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letter_audit_message_id")
    op.drop_table("dead_letter_audit")
