"""ResourceStore: the SQL for resources, versions, the search index and conditional-write locks.

Works on one open Connection inside the caller's transaction; it never commits.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Table, and_, bindparam, exists, func, or_, select, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from adapter.search.extract import IndexRow
from adapter.search.query import SearchQuery
from adapter.store import search_sql, selectivity
from adapter.store.column_arrays import ColumnArrays
from adapter.store.direct import DriverInserts, next_keys
from adapter.store.schema import (
    LOCK_SLOTS,
    conditional_locks,
    resource_access,
    resource_versions,
    resources,
    search_index,
)


class _Inserts:
    """The INSERT of one table's buffered rows, in one statement whatever their number: column arrays
    on PostgreSQL (column_arrays), the driver's executemany on SQLite (direct.DriverInserts)."""

    def __init__(self, table: Table, columns: tuple[str, ...], *, skip_existing: bool = False):
        self.arrays = ColumnArrays(table, columns, skip_existing=skip_existing)
        self.driver = DriverInserts(table, columns)

    def write(self, connection: Connection, sqlite: bool, rows: list[dict]) -> None:
        if sqlite:
            self.driver.run(connection, rows)
        else:
            connection.execute(self.arrays.statement, self.arrays.parameters(rows))


_HEAD_FIELDS = ("res_type", "res_id", "version_id", "last_updated_us", "deleted", "content")
# New heads' keys: PostgreSQL returns them from its sequence; on SQLite the writer picks them (next_keys).
_PG_HEADS = ColumnArrays(resources, _HEAD_FIELDS, returning=("pk", "res_type", "res_id"))
_SQLITE_HEADS = DriverInserts(resources, ("pk", *_HEAD_FIELDS))
_VERSIONS = _Inserts(
    resource_versions,
    ("resource_pk", "res_type", "res_id", "version_id", "last_updated_us", "method", "deleted", "content"),
)
_INDEX = _Inserts(
    search_index, ("resource_pk", "res_type", "param", "system", "value", "lo_us", "hi_us", "num", "grp")
)
# A label is added to a resource without locking it: a Task shares the patient, order and products it
# points to with its owner, so two Tasks of one new owner written at once by two PostgreSQL transactions
# both find the patient without that label and both insert it; the second would fail on the primary key
# (a 500) where the label it wants is there. Labels are a set, so the row already there is skipped.
# SQLite needs no such clause: its writers run one at a time, and each reads the labels it adds to.
_LABEL_ROWS = _Inserts(resource_access, ("resource_pk", "label"), skip_existing=True)


def insert_index_rows(connection: Connection, rows: list[dict]) -> None:
    """Search index rows (dicts keyed by column name) in one statement, as a flush writes them."""
    _INDEX.write(connection, connection.dialect.name == "sqlite", rows)


_UPDATE_HEAD = (
    update(resources)
    .where(resources.c.pk == bindparam("head_pk"))
    .values(
        version_id=bindparam("new_version"),
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


def _current_during(periods: tuple[tuple[int, int], ...]) -> ColumnElement[bool]:
    """History `_at`: the version was current at some moment of one period [lo, hi): written before
    hi, and not replaced by a later version written at or before lo."""
    v = resource_versions.c
    later = resource_versions.alias("later")

    def during(lo: int, hi: int) -> ColumnElement[bool]:
        replaced = (
            exists()
            .where(later.c.res_type == v.res_type, later.c.res_id == v.res_id)
            .where(later.c.version_id > v.version_id, later.c.last_updated_us <= lo)
        )
        return and_(v.last_updated_us < hi, ~replaced)

    return or_(*(during(lo, hi) for lo, hi in periods))


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
    # The values the search sorted it by, when a search sorts by search parameters.
    sort_values: tuple = ()


_HEAD_COLUMNS = (
    resources.c.pk,
    resources.c.res_type,
    resources.c.res_id,
    resources.c.version_id,
    resources.c.last_updated_us,
    resources.c.deleted,
    resources.c.content,
)


def _head(row) -> StoredResource:  # type: ignore[no-untyped-def]
    if len(row) > 7:  # a search sorted by parameters also selects the sort values
        return StoredResource(
            row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], sort_values=tuple(row[7:])
        )
    return StoredResource(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


class _Pending:
    """Rows written by the interactions and not yet sent to the database."""

    def __init__(self) -> None:
        self.heads: list[dict] = []
        self.new_refs: dict[tuple[str, str], int] = {}  # (type, id) -> placeholder key of a new head
        self.versions: list[dict] = []
        self.head_updates: list[dict] = []
        self.index_deletes: list[dict] = []
        self.index_rows: list[dict] = []
        self.labels: list[tuple[int, str]] = []
        self.added_labels: dict[int, set[str]] = {}

    @property
    def empty(self) -> bool:
        return not self.versions and not self.labels


class ResourceStore:
    """Resources and their history on one database connection."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self._sqlite = connection.dialect.name == "sqlite"
        self._pending = _Pending()
        # What this transaction learnt: referenced resources' primary keys (None: absent or deleted) and
        # stored access labels, so that twenty entries pointing at one Patient look it up once.
        self._known: dict[tuple[str, str], int | None] = {}
        self._db_labels: dict[int, set[str]] = {}
        self._drivers: dict[int, tuple[SearchQuery, int | str | None]] = {}
        self._held_slots: set[int] = set()  # conditional_locks slots this transaction holds

    # -- reads -----------------------------------------------------------------------------------
    def current(self, res_type: str, res_id: str, *, for_update: bool = False) -> StoredResource | None:
        if "\x00" in res_id:
            return None  # no stored id holds a NUL, and PostgreSQL refuses one in a text parameter
        self.flush()
        stmt = select(*_HEAD_COLUMNS).where(resources.c.res_type == res_type, resources.c.res_id == res_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
        return _head(row) if row else None

    def version(self, res_type: str, res_id: str, version_id: int) -> StoredResource | None:
        if "\x00" in res_id:
            return None  # as in current()
        self.flush()
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
    # Writes are buffered and sent at the next read or at the end of the transaction, one statement per
    # table: a 20-entry transaction costs a handful of round trips instead of seven per resource. New
    # resources get a negative placeholder key until their INSERT returns the real primary key.
    def lock_key(self, key: str) -> None:
        """Serialise conditional writes on `key` until the transaction ends (see lock_keys)."""
        self.lock_keys((key,))

    @property
    def takes_row_locks(self) -> bool:
        """Whether writers lock rows to serialise (PostgreSQL); SQLite's writers run one at a time."""
        return not self._sqlite

    def lock_keys(self, keys: Iterable[str]) -> None:
        """Serialise conditional writes on these keys until the transaction ends: a row lock on each key's
        slot of conditional_locks. SQLite needs none: its writers run one at a time.

        The slots are locked in ascending order, in one statement: two transaction Bundles that each
        need the same two slots would otherwise lock them in their entries' orders, and when these
        differ each would hold the slot the other waits for (PostgreSQL then fails one as a deadlock,
        after a second). A slot this transaction holds is not asked for again."""
        if self._sqlite:
            return
        slots = sorted({zlib.crc32(key.encode("utf-8")) % LOCK_SLOTS for key in keys} - self._held_slots)
        if not slots:
            return
        slot = conditional_locks.c.slot
        self.connection.execute(select(slot).where(slot.in_(slots)).order_by(slot).with_for_update())
        self._held_slots.update(slots)

    def lock_current(self, refs: Iterable[tuple[str, str]]) -> None:
        """Lock the rows of these (type, id) resources, those that exist, until the transaction ends; in
        (type, id) order, for the reason lock_keys gives: a Bundle's entries lock the resources they
        write one after the other, in their own order. SQLite needs none (one writer at a time)."""
        if self._sqlite:
            return
        wanted = sorted({ref for ref in refs if "\x00" not in ref[1]})  # no stored id holds a NUL
        if not wanted:
            return
        self.flush()
        r = resources.c
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            self.connection.execute(
                select(r.pk)
                .where(tuple_(r.res_type, r.res_id).in_(chunk))
                .order_by(r.res_type, r.res_id)
                .with_for_update()
            ).all()

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
        pending = self._pending
        key = -(len(pending.heads) + 1)
        pending.heads.append(
            {
                "res_type": res_type,
                "res_id": res_id,
                "version_id": 1,
                "last_updated_us": last_updated_us,
                "deleted": False,
                "content": content,
            }
        )
        pending.new_refs[(res_type, res_id)] = key
        self._add_version(key, res_type, res_id, 1, last_updated_us, method, False, content)
        self._index(key, res_type, rows)
        return StoredResource(key, res_type, res_id, 1, last_updated_us, False, content)

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
        pk, res_type, res_id = current.pk, current.res_type, current.res_id
        self._add_version(pk, res_type, res_id, version_id, last_updated_us, method, deleted, content)
        self._pending.head_updates.append(
            {
                "head_pk": current.pk,
                "new_version": version_id,
                "new_updated": last_updated_us,
                "new_deleted": deleted,
                "new_content": content,
            }
        )
        self._pending.index_deletes.append({"head_pk": current.pk})
        if not deleted:
            self._index(current.pk, current.res_type, rows)
        return StoredResource(
            current.pk, current.res_type, current.res_id, version_id, last_updated_us, deleted, content
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
    ) -> None:
        self._pending.versions.append(
            {
                "resource_pk": pk,
                "res_type": res_type,
                "res_id": res_id,
                "version_id": version_id,
                "last_updated_us": last_updated_us,
                "method": method,
                "deleted": deleted,
                "content": content,
            }
        )

    def _index(self, pk: int, res_type: str, rows: Iterable[IndexRow]) -> None:
        self._pending.index_rows.extend(
            {
                "resource_pk": pk,
                "res_type": res_type,
                "param": r.param,
                "system": r.system,
                "value": r.value,
                "lo_us": r.lo_us,
                "hi_us": r.hi_us,
                "num": r.num,
                "grp": r.grp,
            }
            for r in rows
        )

    def flush(self) -> None:
        """Send the buffered writes; called before every read and before the transaction commits."""
        pending = self._pending
        if pending.empty:
            return
        self._pending = _Pending()
        if pending.head_updates:
            # A deleted or replaced resource changes what the reference cache would answer.
            self._known.clear()
        connection = self.connection
        sqlite = self._sqlite
        real: dict[int, int] = {}
        if pending.heads:
            if sqlite:
                pks = next_keys(connection, resources, len(pending.heads))
                for pk, head in zip(pks, pending.heads, strict=True):
                    head["pk"] = pk
                _SQLITE_HEADS.run(connection, pending.heads)
                real = {-(i + 1): pk for i, pk in enumerate(pks)}
            else:
                # INSERT ... SELECT returns its rows in no promised order: match them by (type, id).
                keys = {(h["res_type"], h["res_id"]): -(i + 1) for i, h in enumerate(pending.heads)}
                returned = connection.execute(_PG_HEADS.statement, _PG_HEADS.parameters(pending.heads))
                real = {keys[(row[1], row[2])]: row[0] for row in returned}

        def pk_of(key: int) -> int:
            return real[key] if key < 0 else key

        versions = pending.versions
        for row in versions:
            row["resource_pk"] = pk_of(row["resource_pk"])
        _VERSIONS.write(connection, sqlite, versions)
        if pending.head_updates:
            connection.execute(_UPDATE_HEAD, pending.head_updates)
            connection.execute(_DELETE_INDEX, pending.index_deletes)
        if pending.index_rows:
            for row in pending.index_rows:
                row["resource_pk"] = pk_of(row["resource_pk"])
            _INDEX.write(connection, sqlite, pending.index_rows)
        if pending.labels:
            labels = [{"resource_pk": pk_of(key), "label": label} for key, label in pending.labels]
            _LABEL_ROWS.write(connection, sqlite, labels)
        for key, labels in pending.added_labels.items():
            if key < 0:
                self._db_labels[real[key]] = set(labels)
            elif key in self._db_labels:
                self._db_labels[key] |= labels
        for ref, key in pending.new_refs.items():
            self._known[ref] = real[key]

    def discard(self) -> None:
        """Forget buffered writes (their savepoint was rolled back) and what was cached alongside them."""
        self._pending = _Pending()
        self._known.clear()
        self._db_labels.clear()
        # PostgreSQL releases the locks taken in a savepoint rolled back: ask again for any slot needed.
        self._held_slots.clear()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction whose buffered writes are sent before it ends, or dropped with it."""
        self.flush()
        try:
            with self.connection.begin_nested():
                yield
                self.flush()
        except BaseException:
            self.discard()
            raise

    # -- access labels ---------------------------------------------------------------------------
    def labels(self, pk: int) -> set[str]:
        """The resource's access labels, those written earlier in this transaction included."""
        if pk < 0:
            return set(self._pending.added_labels.get(pk, ()))
        stored = self._db_labels.get(pk)
        if stored is None:
            stored = self._db_labels[pk] = set(self.connection.execute(_LABELS, {"head_pk": pk}).scalars())
        return stored | self._pending.added_labels.get(pk, set())

    def labels_by_reference(
        self, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, set[str]]]:
        """(type, id) -> (pk, labels) for the referenced resources that exist and are not deleted."""
        wanted = set(refs)
        if not wanted:
            return {}
        if self._pending.head_updates:
            self.flush()  # a buffered delete must hide its resource
        out: dict[tuple[str, str], tuple[int, set[str]]] = {}
        unknown = []
        for ref in wanted:
            key = self._pending.new_refs.get(ref)
            if key is not None:
                out[ref] = (key, self.labels(key))
            elif ref in self._known:
                pk = self._known[ref]
                if pk is not None:
                    out[ref] = (pk, self.labels(pk))
            else:
                unknown.append(ref)
        if unknown:
            rows = []
            for start in range(0, len(unknown), 500):
                chunk = unknown[start : start + 500]
                rows += self.connection.execute(
                    _REFERENCED,
                    {"types": sorted({t for t, _ in chunk}), "ids": sorted({i for _, i in chunk})},
                ).all()
            fetched: dict[tuple[str, str], tuple[int, set[str]]] = {}
            for res_type, res_id, pk, label in rows:
                entry = fetched.setdefault((res_type, res_id), (pk, set()))
                if label is not None:
                    entry[1].add(label)
            for ref in unknown:
                found = fetched.get(ref)
                self._known[ref] = found[0] if found else None
                if found:
                    self._db_labels.setdefault(found[0], set(found[1]))
                    out[ref] = (found[0], self.labels(found[0]))
        return out

    def add_labels(self, pk: int, labels: Iterable[str], existing: set[str] | None = None) -> None:
        if existing is None:
            have = self.labels(pk)
        else:  # the caller read the stored labels already
            have = existing | self._pending.added_labels.get(pk, set())
        new = sorted(set(labels) - have)
        if new:
            self._pending.added_labels.setdefault(pk, set()).update(new)
            self._pending.labels.extend((pk, label) for label in new)

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
        at: tuple[tuple[int, int], ...] = (),
    ) -> list[StoredResource]:
        """Versions newest first, optionally of one type or one resource, below a paging cursor; with
        `at`, only those current at some moment of one of these [lo, hi) periods."""
        self.flush()
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
        if at:
            stmt = stmt.where(_current_during(at))
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
        at: tuple[tuple[int, int], ...] = (),
    ) -> int:
        self.flush()
        v = resource_versions.c
        stmt = select(func.count()).select_from(resource_versions)
        if res_type:
            stmt = stmt.where(v.res_type == res_type)
        if res_id:
            stmt = stmt.where(v.res_id == res_id)
        if since_us is not None:
            stmt = stmt.where(v.last_updated_us >= since_us)
        if at:
            stmt = stmt.where(_current_during(at))
        if max_seq is not None:
            stmt = stmt.where(v.seq <= max_seq)
        if visible is not None:
            stmt = stmt.where(_visible(v.resource_pk, visible))
        return int(self.connection.execute(stmt).scalar_one())

    # -- search ----------------------------------------------------------------------------------
    def max_pk(self) -> int:
        self.flush()
        return int(self.connection.execute(select(func.max(resources.c.pk))).scalar() or 0)

    def max_last_updated(self, res_type: str) -> int:
        self.flush()
        stmt = select(func.max(resources.c.last_updated_us)).where(resources.c.res_type == res_type)
        return int(self.connection.execute(stmt).scalar() or 0)

    def search(
        self, query: SearchQuery, *, snapshot: int | None, after: tuple[int, ...] | None, limit: int
    ) -> list[StoredResource]:
        """Current, not deleted resources matching `query`, in its order, after the keyset cursor."""
        self.flush()
        driver = self._driver(query)
        cached, params = search_sql.search_statement(
            query,
            _HEAD_COLUMNS,
            snapshot=snapshot,
            after=after,
            limit=limit,
            driver=driver,
            # PostgreSQL: a walk of the resources table (in sort order, or over a _lastUpdated range)
            # needs its probes kept as probes (search_sql._probe). When a small set of index rows
            # drives, the planner's joins do as well as probes (measured with bench.polling).
            fenced=driver in (search_sql.ORDERED, search_sql.BY_UPDATED) and not self._sqlite,
        )
        return [_head(row) for row in cached.rows(self.connection, params)]

    def _driver(self, query: SearchQuery) -> int | str | None:
        """Which filter a search reads first (see search_sql.PROBE_LIMIT), decided once per query.

        Counts remembered from recent probes (selectivity.py) answer for the filters they cover; the
        others are counted, unless a remembered one is already small enough to drive.
        """
        known = self._drivers.get(id(query))
        if known is not None and known[0] is query:
            return known[1]
        by_id = any(c.type == "_id" and c.modifier != "not" for c in query.conditions)
        driver: int | str | None = None if by_id else search_sql.ORDERED
        probe = search_sql.probe_plan(query)
        if probe is not None:
            shape, params, candidates = probe
            driver = self._choose(shape, params, candidates)
        if driver == search_sql.ORDERED and search_sql.by_parameter(query.sort):
            driver = None  # no index holds that order: walking one would not help
        self._drivers[id(query)] = (query, driver)
        return driver

    def _choose(self, shape: tuple, params: dict, candidates: list[int | str]) -> int | str:
        hints = selectivity.for_engine(self.connection.engine)
        limit = search_sql.PROBE_LIMIT
        res_type = params["rt"]
        counts: dict[int | str, int] = {}
        keys: dict[int | str, tuple] = {}
        lower = 0
        for candidate in candidates:
            if candidate == search_sql.BY_UPDATED:
                lower = search_sql.updated_lower_bound(shape, params)
                count = hints.updated_since(res_type, lower, limit)
            else:
                keys[candidate] = search_sql.candidate_key(shape, params, candidate)
                count = hints.count(keys[candidate])
            if count is not None:
                counts[candidate] = count
        unknown = [c for c in candidates if c not in counts]
        if unknown and not any(count < limit for count in counts.values()):
            stmt = search_sql.probe_statement(shape, unknown)
            for candidate, count in zip(unknown, self.connection.execute(stmt, params).one(), strict=True):
                counts[candidate] = count
                if candidate == search_sql.BY_UPDATED:
                    hints.remember_updated(res_type, lower, count)
                else:
                    hints.remember(keys[candidate], count)
        measured = [c for c in candidates if c in counts]
        return search_sql.choose_driver(measured, tuple(counts[c] for c in measured))

    def included(
        self,
        res_type: str,
        includes: list[tuple[str, str | None]],
        pks: list[int],
        visible_labels: frozenset[str] | None,
    ) -> list[StoredResource]:
        """Resources that the (reference parameter, target type) pairs point to from the given
        resources of `res_type`, those with one of `visible_labels` only (None: all)."""
        self.flush()
        if not pks or not includes:
            return []
        si, r = search_index.c, resources.c
        wanted = or_(
            *(
                and_(si.param == code, si.system == target) if target else si.param == code
                for code, target in includes
            )
        )
        stmt = (
            select(*_HEAD_COLUMNS)
            .select_from(search_index.join(resources, and_(r.res_type == si.system, r.res_id == si.value)))
            .where(si.resource_pk.in_(pks), si.res_type == res_type, wanted, r.deleted.is_(False))
            .distinct()
        )
        if visible_labels is not None:
            stmt = stmt.where(_visible(r.pk, visible_labels))
        return [_head(row) for row in self.connection.execute(stmt)]

    def revincluded(
        self, query: SearchQuery, matches: list[StoredResource], *, limit: int
    ) -> list[StoredResource]:
        """Up to `limit` resources whose `_revinclude` reference parameters point at the given results."""
        targets = [(query.res_type, m.res_id) for m in matches]
        return self.referring(query.revincludes, targets, query.visible_labels, limit=limit)

    def referring(
        self,
        links: list[tuple[str, str]],
        targets: list[tuple[str, str]],
        visible_labels: frozenset[str] | None,
        *,
        limit: int,
        updated_since: int | None = None,
    ) -> list[StoredResource]:
        """Up to `limit` current resources whose (source type, reference parameter) `links` point at
        one of the (type, id) `targets`, those with one of `visible_labels` only (None: all), last
        updated at or after `updated_since` (microseconds) when given; in creation order."""
        self.flush()
        if not targets or not links:
            return []
        si, r = search_index.c, resources.c
        types = {t for t, _ in targets}
        if len(types) == 1:  # the usual case: the (type, parameter, value) index serves it
            pointing = and_(si.system == types.pop(), si.value.in_(sorted({i for _, i in targets})))
        else:
            # Naming the value's presence lets the database read the (partial) value index.
            pointing = and_(si.value.isnot(None), tuple_(si.system, si.value).in_(sorted(set(targets))))
        stmt = (
            select(*_HEAD_COLUMNS)
            .select_from(search_index.join(resources, r.pk == si.resource_pk))
            .where(
                or_(*(and_(si.res_type == source, si.param == code) for source, code in links)),
                pointing,
                r.deleted.is_(False),
            )
            .distinct()
            .order_by(r.pk)
            .limit(limit)
        )
        if visible_labels is not None:
            stmt = stmt.where(_visible(r.pk, visible_labels))
        if updated_since is not None:
            stmt = stmt.where(r.last_updated_us >= updated_since)
        return [_head(row) for row in self.connection.execute(stmt)]

    def count(self, query: SearchQuery, *, snapshot: int | None) -> int:
        self.flush()
        driver = self._driver(query)
        if driver == search_sql.ORDERED and not self._sqlite:
            # A count reads every match: walking the sort order with per-row probes would gain nothing
            # from the order, and PostgreSQL plans the uncorrelated form from its statistics.
            driver = None
        cached, params = search_sql.count_statement(query, snapshot=snapshot, driver=driver)
        return int(cached.rows(self.connection, params)[0][0])


def _visible(pk_column, labels: frozenset[str]) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    if not labels:
        return pk_column.is_(None)  # nothing is visible
    ra = resource_access.c
    return exists().where(ra.resource_pk == pk_column, ra.label.in_(sorted(labels)))
