"""Store state: the definition the search index was built with.

A database indexed by an earlier set of search parameters (before `_tag`, `_profile`, `_security` and
`_source`) gets an empty fingerprint, so the first start-up after this migration rebuilds its index
(store/reindex.py).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "store_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(table, [{"key": "search_index", "value": ""}])


def downgrade() -> None:
    op.drop_table("store_state")
