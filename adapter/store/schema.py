"""Table definitions (SQLAlchemy Core); Alembic migrations create them, tests compare against them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from adapter.search.extract import SYSTEM_CHARS, VALUE_CHARS
from adapter.security.clients import CLIENT_ID_CHARS, LABEL_CHARS

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
    Column("last_updated_us", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    Index("ux_resources_type_id", "res_type", "res_id", unique=True),
    # _lastUpdated searches and _sort=_lastUpdated (ties broken by pk) read this index in order.
    Index("ix_resources_type_updated", "res_type", "last_updated_us", "pk"),
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
    Column("system", String(SYSTEM_CHARS), nullable=True),
    Column("value", String(VALUE_CHARS), nullable=True),
    # date ranges as [lo, hi) in microseconds since the epoch, UTC.
    Column("lo_us", BigInteger, nullable=True),
    Column("hi_us", BigInteger, nullable=True),
    # number and quantity values (a quantity's unit in system and value); migration 0006.
    Column("num", Float, nullable=True),
    # composite parameters: the rows of one combination's components share this number (migration 0007).
    Column("grp", Integer, nullable=True),
    # With the resource key last (migration 0008): a search driven by these values needs no table lookup.
    # Rows with a value only (migration 0009): date and number rows have their own indexes below.
    Index(
        "ix_search_value",
        "res_type",
        "param",
        "value",
        "system",
        "resource_pk",
        sqlite_where=text("value IS NOT NULL"),
        postgresql_where=text("value IS NOT NULL"),
    ),
    # Date rows only (migration 0004): the other rows have no range and would only slow every write.
    Index(
        "ix_search_date",
        "res_type",
        "param",
        "lo_us",
        "hi_us",
        sqlite_where=text("lo_us IS NOT NULL"),
        postgresql_where=text("lo_us IS NOT NULL"),
    ),
    # Number and quantity rows only, like the date index.
    Index(
        "ix_search_number",
        "res_type",
        "param",
        "num",
        sqlite_where=text("num IS NOT NULL"),
        postgresql_where=text("num IS NOT NULL"),
    ),
    # Per-resource probes of a search that another filter drives, and deleting a resource's rows.
    Index("ix_search_resource", "resource_pk", "param"),
)

conditional_locks = Table(
    "conditional_locks",
    metadata,
    Column("slot", Integer, primary_key=True, autoincrement=False),
)

# Clients registered with `cart-adapter clients add` (clients may also come from the clients file).
clients = Table(
    "clients",
    metadata,
    Column("client_id", String(CLIENT_ID_CHARS), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("organization", String(LABEL_CHARS), nullable=True),
    Column("scopes", Text, nullable=False),
    Column("secret_hash", String(255), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("patient_fields", Text, nullable=True),
    Column("label", String(LABEL_CHARS), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_us", BigInteger, nullable=False),
)

# Client assertion ids seen until they expire, so that a captured assertion cannot be replayed.
used_assertions = Table(
    "used_assertions",
    metadata,
    Column("client_id", String(CLIENT_ID_CHARS), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_us", BigInteger, nullable=False),
    Index("ix_used_assertions_expires", "expires_us"),
)

# Which organisations may see a resource: the hospital that wrote it, the manufacturer owning its Task.
resource_access = Table(
    "resource_access",
    metadata,
    Column("resource_pk", BigInteger, ForeignKey("resources.pk"), primary_key=True),
    Column("label", String(LABEL_CHARS), primary_key=True),
    Index("ix_resource_access_label", "label", "resource_pk"),
)

# The audit trail, written in its own transaction so that a failed request is still recorded.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", _PK, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("recorded_us", BigInteger, nullable=False),
    Column("client_id", String(100), nullable=True),
    Column("action", String(1), nullable=False),
    Column("interaction", String(40), nullable=False),
    Column("outcome", String(2), nullable=False),
    Column("entity", String(200), nullable=True),
    Column("content", Text, nullable=False),
    Index("ux_audit_event_id", "event_id", unique=True),
    Index("ix_audit_recorded", "recorded_us"),
    Index("ix_audit_client", "client_id", "recorded_us"),
    Index("ix_audit_entity", "entity", "recorded_us"),
)

# Facts about the stored data checked at start-up: under "search_index", the fingerprint of the
# parameter definitions the search index was built with (store/reindex.py rebuilds it when they change).
store_state = Table(
    "store_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
