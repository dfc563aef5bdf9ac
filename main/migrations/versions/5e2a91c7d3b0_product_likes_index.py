"""product (likes, id) index: the gallery's "most liked" order pages by keyset without a sort

Revision ID: 5e2a91c7d3b0
Revises: 21c89e0d4bd4
Create Date: 2026-12-02 05:50:00.000000
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "5e2a91c7d3b0"
down_revision = "21c89e0d4bd4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.create_index("ix_product_likes_id", ["likes", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_index("ix_product_likes_id")
