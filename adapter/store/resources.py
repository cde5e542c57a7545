"""ResourceStore: the SQL for resources, versions, the search index and conditional-write locks.

Works on one open Connection inside the caller's transaction; it never commits.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from adapter.search.extract import IndexRow
from adapter.search.query import SearchQuery
from adapter.store import search_sql
from adapter.store.schema import (
    LOCK_SLOTS,
    conditional_locks,
    resource_access,
    resource_versions,
    resources,
    search_index,
)

_INSERT_HEAD = resources.insert()
_INSERT_VERSION = resource_versions.insert()
_SET_LAST_SEQ = (
    update(resources).where(resources.c.pk == bindparam("head_pk")).values(last_seq=bindparam("new_seq"))
)
_UPDATE_HEAD = (
    update(resources)
    .where(resources.c.pk == bindparam("head_pk"))
    .values(
        version_id=bindparam("new_version"),
        last_seq=bindparam("new_seq"),
        last_updated_us=bindparam("new_updated"),
        deleted=bindparam("new_deleted"),
        content=bindparam("new_content"),
    )
)
_DELETE_INDEX = search_index.delete().where(search_index.c.resource_pk == bindparam("head_pk"))
_LABELS = select(resource_access.c.label).where(resource_access.c.resource_pk == bindparam("head_pk"))
_REFERENCED = (
    select(resources.c.res_type, resources.c.res_id, resources.c.pk, resource_access.c.label)
    .select_from(resources.outerjoin(resource_access, resource_access.c.resource_pk == resources.c.pk))
    # Two IN lists rather than a row-value IN: SQLite uses the (res_type, res_id) index only for these.
    .where(resources.c.res_type.in_(bindparam("types", expanding=True)))
    .where(resources.c.res_id.in_(bindparam("ids", expanding=True)))
    .where(resources.c.deleted.is_(False))
)


@dataclass(frozen=True)
class StoredResource:
    pk: int
    res_type: str
    res_id: str
    version_id: int
    last_updated_us: int
    deleted: bool
    content: str | None
    seq: int = 0
    method: str = ""


_HEAD_COLUMNS = (
    resources.c.pk,
    resources.c.res_type,
    resources.c.res_id,
    resources.c.version_id,
    resources.c.last_updated_us,
    resources.c.deleted,
    resources.c.content,
    resources.c.last_seq,
)


def _head(row) -> StoredResource:  # type: ignore[no-untyped-def]
    return StoredResource(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])


class ResourceStore:
    """Resources and their history on one database connection."""

    def __init__(self, connection: Connection):
        self.connection = connection

    # -- reads -----------------------------------------------------------------------------------
    def current(self, res_type: str, res_id: str, *, for_update: bool = False) -> StoredResource | None:
        stmt = select(*_HEAD_COLUMNS).where(resources.c.res_type == res_type, resources.c.res_id == res_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
        return _head(row) if row else None

    def version(self, res_type: str, res_id: str, version_id: int) -> StoredResource | None:
        v = resource_versions.c
        row = self.connection.execute(
            select(
                v.resource_pk,
                v.res_type,
                v.res_id,
                v.version_id,
                v.last_updated_us,
                v.deleted,
                v.content,
                v.seq,
                v.method,
            ).where(v.res_type == res_type, v.res_id == res_id, v.version_id == version_id)
        ).first()
        return StoredResource(*row[:5], bool(row[5]), *row[6:]) if row else None

    # -- writes ----------------------------------------------------------------------------------
    def lock_key(self, key: str) -> None:
        """Serialise conditional writes on `key` until the transaction ends (row lock; SQLite: no-op)."""
        slot = zlib.crc32(key.encode("utf-8")) % LOCK_SLOTS
        self.connection.execute(
            select(conditional_locks.c.slot).where(conditional_locks.c.slot == slot).with_for_update()
        )

    def insert(
        self,
        res_type: str,
        res_id: str,
        content: str,
        last_updated_us: int,
        rows: Iterable[IndexRow],
        *,
        method: str = "POST",
    ) -> StoredResource:
        # Statements with bound parameters (not .values(...)) are built and compiled once and reused.
        pk = self.connection.execute(
            _INSERT_HEAD,
            {
                "res_type": res_type,
                "res_id": res_id,
                "version_id": 1,
                "last_seq": 0,
                "last_updated_us": last_updated_us,
                "deleted": False,
                "content": content,
            },
        ).inserted_primary_key[0]
        seq = self._add_version(pk, res_type, res_id, 1, last_updated_us, method, False, content)
        self.connection.execute(_SET_LAST_SEQ, {"head_pk": pk, "new_seq": seq})
        self._index(pk, res_type, rows)
        return StoredResource(pk, res_type, res_id, 1, last_updated_us, False, content, seq)

    def replace(
        self,
        current: StoredResource,
        content: str | None,
        last_updated_us: int,
        rows: Iterable[IndexRow],
        *,
        method: str,
    ) -> StoredResource:
        """Write the next version of `current` (a delete when content is None)."""
        version_id = current.version_id + 1
        deleted = content is None
        seq = self._add_version(
            current.pk,
            current.res_type,
            current.res_id,
            version_id,
            last_updated_us,
            method,
            deleted,
            content,
        )
        self.connection.execute(
            _UPDATE_HEAD,
            {
                "head_pk": current.pk,
                "new_version": version_id,
                "new_seq": seq,
                "new_updated": last_updated_us,
                "new_deleted": deleted,
                "new_content": content,
            },
        )
        self.connection.execute(_DELETE_INDEX, {"head_pk": current.pk})
        if not deleted:
            self._index(current.pk, current.res_type, rows)
        return StoredResource(
            current.pk, current.res_type, current.res_id, version_id, last_updated_us, deleted, content, seq
        )

    def _add_version(
        self,
        pk: int,
        res_type: str,
        res_id: str,
        version_id: int,
        last_updated_us: int,
        method: str,
        deleted: bool,
        content: str | None,
    ) -> int:
        return self.connection.execute(
            _INSERT_VERSION,
            {
                "resource_pk": pk,
                "res_type": res_type,
                "res_id": res_id,
                "version_id": version_id,
                "last_updated_us": last_updated_us,
                "method": method,
                "deleted": deleted,
                "content": content,
            },
        ).inserted_primary_key[0]

    def _index(self, pk: int, res_type: str, rows: Iterable[IndexRow]) -> None:
        values = [
            {
                "resource_pk": pk,
                "res_type": res_type,
                "param": r.param,
                "system": r.system,
                "value": r.value,
                "lo_us": r.lo_us,
                "hi_us": r.hi_us,
            }
            for r in rows
        ]
        if values:
            self.connection.execute(search_index.insert(), values)

    # -- access labels ---------------------------------------------------------------------------
    def labels(self, pk: int) -> set[str]:
        return set(self.connection.execute(_LABELS, {"head_pk": pk}).scalars())

    def labels_by_reference(
        self, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, set[str]]]:
        """(type, id) -> (pk, labels) for the referenced resources that exist and are not deleted."""
        wanted = set(refs)
        if not wanted:
            return {}
        rows = self.connection.execute(
            _REFERENCED, {"types": sorted({t for t, _ in wanted}), "ids": sorted({i for _, i in wanted})}
        ).all()
        out: dict[tuple[str, str], tuple[int, set[str]]] = {}
        for res_type, res_id, pk, label in rows:
            if (res_type, res_id) not in wanted:
                continue
            entry = out.setdefault((res_type, res_id), (pk, set()))
            if label is not None:
                entry[1].add(label)
        return out

    def add_labels(self, pk: int, labels: Iterable[str], existing: set[str] | None = None) -> None:
        have = self.labels(pk) if existing is None else existing
        new = sorted(set(labels) - have)
        if new:
            self.connection.execute(resource_access.insert(), [{"resource_pk": pk, "label": x} for x in new])

    # -- history ---------------------------------------------------------------------------------
    def history(
        self,
        res_type: str | None,
        res_id: str | None,
        *,
        since_us: int | None,
        before_seq: int | None,
        limit: int,
        visible: frozenset[str] | None = None,
    ) -> list[StoredResource]:
        """Versions newest first, optionally of one type or one resource, below a paging cursor."""
        v = resource_versions.c
        stmt = select(
            v.resource_pk,
            v.res_type,
            v.res_id,
            v.version_id,
            v.last_updated_us,
            v.deleted,
            v.content,
            v.seq,
            v.method,
        )
        if res_type:
            stmt = stmt.where(v.res_type == res_type)
        if res_id:
            stmt = stmt.where(v.res_id == res_id)
        if since_us is not None:
            stmt = stmt.where(v.last_updated_us >= since_us)
        if before_seq is not None:
            stmt = stmt.where(v.seq < before_seq)
        if visible is not None:
            stmt = stmt.where(_visible(v.resource_pk, visible))
        rows = self.connection.execute(stmt.order_by(v.seq.desc()).limit(limit)).all()
        return [StoredResource(*r[:5], bool(r[5]), *r[6:]) for r in rows]

    def count_history(
        self,
        res_type: str | None,
        res_id: str | None,
        since_us: int | None,
        max_seq: int | None,
        visible: frozenset[str] | None = None,
    ) -> int:
        v = resource_versions.c
        stmt = select(func.count()).select_from(resource_versions)
        if res_type:
            stmt = stmt.where(v.res_type == res_type)
        if res_id:
            stmt = stmt.where(v.res_id == res_id)
        if since_us is not None:
            stmt = stmt.where(v.last_updated_us >= since_us)
        if max_seq is not None:
            stmt = stmt.where(v.seq <= max_seq)
        if visible is not None:
            stmt = stmt.where(_visible(v.resource_pk, visible))
        return int(self.connection.execute(stmt).scalar_one())

    # -- search ----------------------------------------------------------------------------------
    def max_pk(self) -> int:
        return int(self.connection.execute(select(func.max(resources.c.pk))).scalar() or 0)

    def max_seq(self) -> int:
        return int(self.connection.execute(select(func.max(resource_versions.c.seq))).scalar() or 0)

    def search(
        self, query: SearchQuery, *, snapshot: int | None, after: int | None, limit: int
    ) -> list[StoredResource]:
        """Current, not deleted resources matching `query`, in its order, after the keyset cursor."""
        stmt, params = search_sql.search_statement(
            query, _HEAD_COLUMNS, snapshot=snapshot, after=after, limit=limit
        )
        return [_head(row) for row in self.connection.execute(stmt, params)]

    def included(self, query: SearchQuery, pks: list[int]) -> list[StoredResource]:
        """Resources the `_include` parameters of `query` point to from the given results."""
        if not pks or not query.includes:
            return []
        si, r = search_index.c, resources.c
        wanted = or_(
            *(
                and_(si.param == code, si.system == target) if target else si.param == code
                for code, target in query.includes
            )
        )
        stmt = (
            select(*_HEAD_COLUMNS)
            .select_from(search_index.join(resources, and_(r.res_type == si.system, r.res_id == si.value)))
            .where(si.resource_pk.in_(pks), si.res_type == query.res_type, wanted, r.deleted.is_(False))
            .distinct()
        )
        if query.visible_labels is not None:
            stmt = stmt.where(_visible(r.pk, query.visible_labels))
        return [_head(row) for row in self.connection.execute(stmt)]

    def count(self, query: SearchQuery, *, snapshot: int | None) -> int:
        stmt, params = search_sql.count_statement(query, snapshot=snapshot)
        return int(self.connection.execute(stmt, params).scalar_one())


def _visible(pk_column, labels: frozenset[str]) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    if not labels:
        return pk_column.is_(None)  # nothing is visible
    ra = resource_access.c
    return exists().where(ra.resource_pk == pk_column, ra.label.in_(sorted(labels)))
