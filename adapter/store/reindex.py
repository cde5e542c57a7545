"""The search index rebuilt from the stored resources when the indexed parameters change.

Index rows are extracted when a resource is written. A new release that indexes more parameters (or
indexes them differently) would leave older resources unfindable by them, so the definition the index
was built with is kept as a fingerprint (`store_state`), and start-up rebuilds the index of every
current resource when it differs. `cart-adapter db reindex` rebuilds it on demand.
"""

from __future__ import annotations

import hashlib
import json
import logging

from sqlalchemy import Connection, Engine, delete, insert, select, update

from adapter.fhirio.jsonio import parse_stored_json
from adapter.search.extract import index_rows
from adapter.search.params import own_base, registry
from adapter.store.engine import write_transaction
from adapter.store.resources import insert_index_rows
from adapter.store.schema import resources, search_index, store_state

logger = logging.getLogger(__name__)

# Raise when extract.py indexes the same parameters differently (normalisation, date ranges...).
# 2: systems cut to the width of their column, as values were (PostgreSQL refused longer ones).
# 3: string values also as written, in the system column (:exact).
# 4: reference identifiers (:identifier) and identifier types (:of-type).
# 5: canonical references, by the type and id their URL ends with.
# 6: Patient?deceased (present and not false).
# 7: versioned canonical references also as "<id>|<version>" (questionnaire=<url>|1.2).
# 8: codes and booleans with the system their binding implies (gender=<administrative-gender>|female).
# 9: absolute references to another server by their URL, not by the id they end with.
# 10: a Quantity's unit as written, beside its code, when they differ (value-quantity=5.4||milligram).
# 11: Patient?deceased rows with the boolean system, as other booleans have since 8.
# 12: a versioned canonical in a uri parameter (meta.profile "<url>|2.0") also without its version.
EXTRACTION_VERSION = 12
_KEY = "search_index"


def index_definition() -> str:
    """A fingerprint of what the index holds: every indexed parameter, its paths, and the extraction."""
    parts: list = [EXTRACTION_VERSION, own_base()]
    for res_type, params in sorted(registry().items()):
        for code, param in sorted(params.items()):
            paths = [
                [
                    *spec.steps,
                    spec.cast,
                    spec.target_type,
                    spec.filters,
                    spec.step_casts,
                    spec.implied_system,
                    spec.implied_by_code,
                ]
                for spec in param.paths
            ]
            parts.append([res_type, code, param.type, paths, list(param.targets)])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def ensure_current(engine: Engine, *, batch: int = 500) -> int | None:
    """Rebuild the index if it was built from another definition: the number of resources reindexed,
    or None when it was current. Concurrent start-ups wait for the one that rebuilds."""
    return _run(engine, batch, force=False)


def rebuild(engine: Engine, *, batch: int = 500) -> int:
    """Rebuild the index of every current resource, whatever it was built from."""
    count = _run(engine, batch, force=True)
    assert count is not None
    return count


def _run(engine: Engine, batch: int, *, force: bool) -> int | None:
    wanted = index_definition()
    with write_transaction(engine) as connection:
        # The row lock makes a second process starting at the same time wait, then see the new value.
        stored = connection.execute(
            select(store_state.c.value).where(store_state.c.key == _KEY).with_for_update()
        ).scalar()
        if stored == wanted and not force:
            return None
        count = _rebuild(connection, batch)
        if stored is None:
            connection.execute(insert(store_state).values(key=_KEY, value=wanted))
        else:
            connection.execute(update(store_state).where(store_state.c.key == _KEY).values(value=wanted))
    if count:
        logger.info("search index rebuilt for %d resources (indexed parameters changed)", count)
    return count


def _rebuild(connection: Connection, batch: int) -> int:
    r = resources.c
    count, after = 0, 0
    while True:
        rows = connection.execute(
            select(r.pk, r.res_type, r.content)
            .where(r.pk > after, r.deleted.is_(False))
            .order_by(r.pk)
            .limit(batch)
        ).all()
        if not rows:
            return count
        pks = [row.pk for row in rows]
        connection.execute(delete(search_index).where(search_index.c.resource_pk.in_(pks)))
        fresh = [
            {
                "resource_pk": row.pk,
                "res_type": row.res_type,
                "param": found.param,
                "system": found.system,
                "value": found.value,
                "lo_us": found.lo_us,
                "hi_us": found.hi_us,
                "num": found.num,
                "grp": found.grp,
            }
            for row in rows
            if row.content
            for found in index_rows(parse_stored_json(row.content))
        ]
        if fresh:
            insert_index_rows(connection, fresh)
        count += len(rows)
        after = pks[-1]
