"""The value index carries the resource key, so that a search driven by one parameter's values reads the
matching resources' keys from the index alone (a Task poll for a business status: one table lookup
fewer per candidate Task).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_search_value", table_name="search_index")
    op.create_index(
        "ix_search_value", "search_index", ["res_type", "param", "value", "system", "resource_pk"]
    )


def downgrade() -> None:
    op.drop_index("ix_search_value", table_name="search_index")
    op.create_index("ix_search_value", "search_index", ["res_type", "param", "value", "system"])
