"""Resources, their versions, the search index and conditional-write lock slots.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_updated_us", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", sa.Text, nullable=True),
    )
    op.create_index("ux_resources_type_id", "resources", ["res_type", "res_id"], unique=True)
    op.create_index("ix_resources_type_seq", "resources", ["res_type", "last_seq"])
    op.create_index("ix_resources_type_updated", "resources", ["res_type", "last_updated_us"])

    op.create_table(
        "resource_versions",
        sa.Column("seq", _PK, primary_key=True, autoincrement=True),
        sa.Column("resource_pk", sa.BigInteger, sa.ForeignKey("resources.pk"), nullable=False),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated_us", sa.BigInteger, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", sa.Text, nullable=True),
    )
    op.create_index(
        "ux_versions_type_id_version", "resource_versions", ["res_type", "res_id", "version_id"], unique=True
    )
    op.create_index("ix_versions_type_seq", "resource_versions", ["res_type", "seq"])

    op.create_table(
        "search_index",
        sa.Column("resource_pk", sa.BigInteger, sa.ForeignKey("resources.pk"), nullable=False),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=True),
        sa.Column("value", sa.String(512), nullable=True),
        sa.Column("lo_us", sa.BigInteger, nullable=True),
        sa.Column("hi_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_search_value", "search_index", ["res_type", "param", "value", "system"])
    op.create_index("ix_search_date", "search_index", ["res_type", "param", "lo_us", "hi_us"])
    op.create_index("ix_search_resource", "search_index", ["resource_pk"])

    locks = op.create_table(
        "conditional_locks",
        sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.bulk_insert(locks, [{"slot": n} for n in range(1024)])


def downgrade() -> None:
    op.drop_table("conditional_locks")
    op.drop_table("search_index")
    op.drop_table("resource_versions")
    op.drop_table("resources")
