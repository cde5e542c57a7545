"""Number and quantity search: a numeric column in the search index, and its partial index.

The index rows themselves come from the start-up reindex (store/reindex.py): the parameter set changed.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_NUMBER_ROWS = sa.text("num IS NOT NULL")


def upgrade() -> None:
    op.add_column("search_index", sa.Column("num", sa.Float, nullable=True))
    op.create_index(
        "ix_search_number",
        "search_index",
        ["res_type", "param", "num"],
        sqlite_where=_NUMBER_ROWS,
        postgresql_where=_NUMBER_ROWS,
    )


def downgrade() -> None:
    op.drop_index("ix_search_number", table_name="search_index")
    with op.batch_alter_table("search_index") as batch:
        batch.drop_column("num")
