"""Table definitions (SQLAlchemy Core); Alembic migrations create them, tests compare against them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only makes an INTEGER PRIMARY KEY an auto-incrementing rowid; PostgreSQL wants BIGINT.
_PK = BigInteger().with_variant(Integer(), "sqlite")

# The number of rows in conditional_locks. Conditional writes on the same business key serialise on one
# row; unrelated keys rarely share a slot, and when they do they only wait for each other briefly.
LOCK_SLOTS = 1024

# One row per logical resource: its current version, read and searched without touching history.
resources = Table(
    "resources",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_updated_us", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    Index("ux_resources_type_id", "res_type", "res_id", unique=True),
    Index("ix_resources_type_seq", "res_type", "last_seq"),
    Index("ix_resources_type_updated", "res_type", "last_updated_us"),
)

# Every version ever written, deletes included; `seq` is the global write order used by history and paging.
resource_versions = Table(
    "resource_versions",
    metadata,
    Column("seq", _PK, primary_key=True, autoincrement=True),
    Column("resource_pk", BigInteger, ForeignKey("resources.pk"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated_us", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    Index("ux_versions_type_id_version", "res_type", "res_id", "version_id", unique=True),
    Index("ix_versions_type_seq", "res_type", "seq"),
)

# Values of the current version of each resource, one row per (search parameter, value).
search_index = Table(
    "search_index",
    metadata,
    Column("resource_pk", BigInteger, ForeignKey("resources.pk"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    # token: system|code; reference: target type|id; string: normalised text in value; uri: value.
    Column("system", String(255), nullable=True),
    Column("value", String(512), nullable=True),
    # date ranges as [lo, hi) in microseconds since the epoch, UTC.
    Column("lo_us", BigInteger, nullable=True),
    Column("hi_us", BigInteger, nullable=True),
    Index("ix_search_value", "res_type", "param", "value", "system"),
    Index("ix_search_date", "res_type", "param", "lo_us", "hi_us"),
    Index("ix_search_resource", "resource_pk"),
)

conditional_locks = Table(
    "conditional_locks",
    metadata,
    Column("slot", Integer, primary_key=True, autoincrement=False),
)
