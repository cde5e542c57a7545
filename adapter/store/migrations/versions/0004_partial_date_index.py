"""The date index holds date rows only.

Nine search index rows in ten are tokens, references and strings, with no date range; the date index
kept them all, and every write paid for updating it. Date searches name `lo_us IS NOT NULL`, so both
databases can read the partial index.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ["res_type", "param", "lo_us", "hi_us"]
_DATE_ROWS = sa.text("lo_us IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_search_date", table_name="search_index")
    op.create_index(
        "ix_search_date", "search_index", _COLUMNS, sqlite_where=_DATE_ROWS, postgresql_where=_DATE_ROWS
    )


def downgrade() -> None:
    op.drop_index("ix_search_date", table_name="search_index")
    op.create_index("ix_search_date", "search_index", _COLUMNS)
