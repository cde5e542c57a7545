"""Composite search: the index rows of one combination's components share a group number.

The rows come from the start-up reindex (store/reindex.py): the parameter set changed.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("search_index", sa.Column("grp", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_index") as batch:
        batch.drop_column("grp")
