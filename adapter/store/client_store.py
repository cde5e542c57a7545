"""Clients registered in the database, and the client assertion ids already used."""

from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapter.security.clients import Client, client_from_mapping
from adapter.store.schema import clients, used_assertions


def add(connection: Connection, client: Client) -> None:
    connection.execute(
        insert(clients).values(
            client_id=client.client_id,
            role=client.role,
            organization=client.organization,
            scopes=client.scopes.text,
            secret_hash=client.secret_hash,
            jwks=json.dumps(client.jwks) if client.jwks else None,
            patient_fields=json.dumps(list(client.patient_fields)),
            label=client.label,
            disabled=False,
            created_us=time.time_ns() // 1000,
        )
    )


def get(connection: Connection, client_id: str) -> Client | None:
    row = connection.execute(select(clients).where(clients.c.client_id == client_id)).mappings().first()
    return client_from_mapping(dict(row)) if row else None


def all_clients(connection: Connection) -> list[Client]:
    rows = connection.execute(select(clients).order_by(clients.c.client_id)).mappings().all()
    return [client_from_mapping(dict(row)) for row in rows]


def set_disabled(connection: Connection, client_id: str, disabled: bool) -> bool:
    result = connection.execute(
        update(clients).where(clients.c.client_id == client_id).values(disabled=disabled)
    )
    return result.rowcount == 1


def _jti_key(jti: str) -> str:
    """The jti as stored: whole when it fits its column, else a digest of it. Cut to the column, two
    jtis that share their first 255 characters were one, and the second assertion a replay."""
    width = used_assertions.c.jti.type.length
    if len(jti) <= width:
        return jti
    return "sha256:" + hashlib.sha256(jti.encode("utf-8")).hexdigest()


def remember_assertion(connection: Connection, client_id: str, jti: str, expires: int) -> bool:
    """Record a client assertion id; False when it was seen before (a replay)."""
    now_us = time.time_ns() // 1000
    connection.execute(delete(used_assertions).where(used_assertions.c.expires_us < now_us))
    try:
        with connection.begin_nested():
            connection.execute(
                insert(used_assertions).values(
                    client_id=client_id, jti=_jti_key(jti), expires_us=expires * 1_000_000
                )
            )
    except IntegrityError:
        return False
    return True
