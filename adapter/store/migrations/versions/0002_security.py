"""Clients, used client assertions, resource access labels and the audit trail.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("organization", sa.String(255), nullable=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=True),
        sa.Column("jwks", sa.Text, nullable=True),
        sa.Column("patient_fields", sa.Text, nullable=True),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "used_assertions",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_used_assertions_expires", "used_assertions", ["expires_us"])
    op.create_table(
        "resource_access",
        sa.Column("resource_pk", sa.BigInteger, sa.ForeignKey("resources.pk"), primary_key=True),
        sa.Column("label", sa.String(255), primary_key=True),
    )
    op.create_index("ix_resource_access_label", "resource_access", ["label", "resource_pk"])
    op.create_table(
        "audit_events",
        sa.Column("seq", _PK, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("action", sa.String(1), nullable=False),
        sa.Column("interaction", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(2), nullable=False),
        sa.Column("entity", sa.String(200), nullable=True),
        sa.Column("content", sa.Text, nullable=False),
    )
    op.create_index("ux_audit_event_id", "audit_events", ["event_id"], unique=True)
    op.create_index("ix_audit_recorded", "audit_events", ["recorded_us"])
    op.create_index("ix_audit_client", "audit_events", ["client_id", "recorded_us"])
    op.create_index("ix_audit_entity", "audit_events", ["entity", "recorded_us"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("resource_access")
    op.drop_table("used_assertions")
    op.drop_table("clients")
