"""Indexes for polling: _sort=_lastUpdated orders by (last_updated_us, pk), and search filters can be
probed per resource.

A poll such as `Task?owner=...&_lastUpdated=gt...&_sort=_lastUpdated` then reads one index range in the
order it returns, where ordering by the write sequence made the database walk every Task of the type;
the write-sequence column on the head row goes. The search index gets (resource_pk, param), so that a
filter that does not drive the search is checked with a few reads per resource.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_resources_type_seq", table_name="resources")
    op.drop_index("ix_resources_type_updated", table_name="resources")
    op.drop_column("resources", "last_seq")
    op.create_index("ix_resources_type_updated", "resources", ["res_type", "last_updated_us", "pk"])
    op.drop_index("ix_search_resource", table_name="search_index")
    op.create_index("ix_search_resource", "search_index", ["resource_pk", "param"])


def downgrade() -> None:
    op.drop_index("ix_search_resource", table_name="search_index")
    op.create_index("ix_search_resource", "search_index", ["resource_pk"])
    op.drop_index("ix_resources_type_updated", table_name="resources")
    op.add_column("resources", sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"))
    # The latest version's sequence number, as 0002 kept it.
    op.execute(
        "UPDATE resources SET last_seq = (SELECT max(v.seq) FROM resource_versions v "
        "WHERE v.resource_pk = resources.pk)"
    )
    op.create_index("ix_resources_type_seq", "resources", ["res_type", "last_seq"])
    op.create_index("ix_resources_type_updated", "resources", ["res_type", "last_updated_us"])
