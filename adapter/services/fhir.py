"""FhirService: the REST interactions as use cases, each in one unit of work."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from adapter.security.tenancy import AccessGuard
from adapter.services import everything, history, interactions, searching
from adapter.services.interactions import SERVER, Clock, WriteOutcome, system_clock_us
from adapter.services.preconditions import NO_PRECONDITIONS, Preconditions
from adapter.services.searching import SearchPage
from adapter.store.ids import new_resource_id
from adapter.store.resources import StoredResource
from adapter.store.unit_of_work import UnitOfWork


class FhirService:
    """Create, read, update, delete, search and history, each as one database transaction."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        clock: Clock = system_clock_us,
        default_count: int = 50,
        max_count: int = 1000,
    ):
        self.uow = uow
        self.clock = clock
        # What the server supports is fixed when it starts: the date of its CapabilityStatement.
        self.started_us = clock()
        self.default_count = default_count
        self.max_count = max_count

    def create(
        self, res_type: str, resource: dict, *, if_none_exist: str | None = None, guard: AccessGuard = SERVER
    ) -> WriteOutcome:
        validated = self._pre_validate(resource, res_type, "c", guard)
        prepared = _prepare(resource, res_type, new_resource_id(res_type), validated)
        with self.uow.writing() as store:
            outcome = interactions.create(
                store,
                res_type,
                resource,
                clock=self.clock,
                if_none_exist=if_none_exist,
                guard=guard,
                validated=validated,
                prepared=prepared,
            )
        return _present_write(outcome, guard)

    @staticmethod
    def _pre_validate(resource: object, res_type: str, permission: str, guard: AccessGuard) -> tuple | None:
        # Validation needs no database: doing it before the write transaction keeps SQLite's single
        # write lock for the SQL alone, so workers validate in parallel. Scopes are checked first.
        if not interactions.is_type(res_type):
            return None
        guard.require(res_type, permission)
        return interactions.pre_validate(resource, res_type)

    def read(self, res_type: str, res_id: str, *, guard: AccessGuard = SERVER) -> StoredResource:
        with self.uow.reading() as store:
            return interactions.presented(interactions.read(store, res_type, res_id, guard=guard), guard)

    def vread(
        self, res_type: str, res_id: str, version: str, *, guard: AccessGuard = SERVER
    ) -> StoredResource:
        with self.uow.reading() as store:
            return interactions.presented(
                interactions.vread(store, res_type, res_id, version, guard=guard), guard
            )

    def update(
        self,
        res_type: str,
        res_id: str,
        resource: dict,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guard: AccessGuard = SERVER,
    ) -> WriteOutcome:
        validated = self._pre_validate(resource, res_type, "u", guard)
        prepared = _prepare(resource, res_type, res_id, validated)
        with self.uow.writing() as store:
            outcome = interactions.update(
                store,
                res_type,
                res_id,
                resource,
                clock=self.clock,
                preconditions=preconditions,
                guard=guard,
                validated=validated,
                prepared=prepared,
            )
        return _present_write(outcome, guard)

    def patch(
        self,
        res_type: str,
        res_id: str,
        document: object,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guard: AccessGuard = SERVER,
    ) -> WriteOutcome:
        """Apply a JSON Patch or a FHIRPath Patch to the current version and store the result as the next
        version.

        The patched resource goes through the same validation, access checks and version check as an
        update; without If-Match the version patched is the one that must still be current.
        """
        with self.uow.writing() as store:
            outcome = interactions.patch(
                store,
                res_type,
                res_id,
                document,
                clock=self.clock,
                preconditions=preconditions,
                guard=guard,
            )
        return _present_write(outcome, guard)

    def conditional_patch(
        self,
        res_type: str,
        query_string: str,
        document: object,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guard: AccessGuard = SERVER,
    ) -> WriteOutcome:
        """Patch the single match of a search: none is 404, several 412."""
        with self.uow.writing() as store:
            outcome = interactions.patch(
                store,
                res_type,
                None,
                document,
                clock=self.clock,
                query_string=query_string,
                preconditions=preconditions,
                guard=guard,
            )
        return _present_write(outcome, guard)

    def conditional_update(
        self,
        res_type: str,
        query_string: str,
        resource: dict,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guard: AccessGuard = SERVER,
    ) -> WriteOutcome:
        validated = self._pre_validate(resource, res_type, "u", guard)
        with self.uow.writing() as store:
            outcome = interactions.conditional_update(
                store,
                res_type,
                query_string,
                resource,
                clock=self.clock,
                preconditions=preconditions,
                guard=guard,
                validated=validated,
            )
        return _present_write(outcome, guard)

    def delete(
        self,
        res_type: str,
        res_id: str,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guard: AccessGuard = SERVER,
    ) -> StoredResource | None:
        with self.uow.writing() as store:
            return interactions.delete(
                store,
                res_type,
                res_id,
                clock=self.clock,
                preconditions=preconditions,
                guard=guard,
            )

    def conditional_delete(
        self,
        res_type: str,
        query_string: str,
        *,
        preconditions: Preconditions = NO_PRECONDITIONS,
        guard: AccessGuard = SERVER,
    ) -> StoredResource | None:
        with self.uow.writing() as store:
            return interactions.conditional_delete(
                store,
                res_type,
                query_string,
                clock=self.clock,
                preconditions=preconditions,
                guard=guard,
            )

    # -- search ------------------------------------------------------------------------------------
    def search(
        self,
        res_type: str,
        args: list[tuple[str, str]],
        *,
        strict: bool = False,
        guard: AccessGuard = SERVER,
        base: str | None = None,
        compartment: tuple[str, str] | None = None,
    ) -> SearchPage:
        """A page of `res_type` matching `args`; in the compartment (type, id) when one is given."""
        query = searching.prepare(
            res_type,
            args,
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
            guard=guard,
            base=base,
            compartment=compartment,
        )
        with self.uow.reading() as store:
            return searching.run(store, query, guard)

    def everything(
        self,
        patient_id: str,
        args: list[tuple[str, str]],
        *,
        strict: bool = False,
        guard: AccessGuard = SERVER,
        base: str,
    ) -> str:
        """Patient/$everything: the searchset Bundle of a patient's record."""
        options = everything.parse_options(args, strict=strict)
        with self.uow.reading() as store:
            record = everything.run(store, patient_id, options, guard, base)
        self_link = f"{base}/Patient/{patient_id}/$everything"
        if args:
            self_link += "?" + urlencode(args)
        return everything.bundle_text(record, base, self_link, self.clock(), guard)

    def search_bundle(self, page: SearchPage, base: str, *, guard: AccessGuard = SERVER) -> str:
        return searching.searchset_text(page, base, self.clock(), guard=guard)

    # -- history -----------------------------------------------------------------------------------
    def history_bundle(
        self,
        base: str,
        res_type: str | None,
        res_id: str | None,
        args: list[tuple[str, str]],
        *,
        guard: AccessGuard = SERVER,
    ) -> str:
        query = history.prepare(
            res_type,
            res_id,
            args,
            guard=guard,
            default_count=self.default_count,
            max_count=self.max_count,
        )
        with self.uow.reading() as store:
            page = history.run(store, query, guard)
        return history.history_text(page, base, self.clock())


def _prepare(
    resource: object, res_type: str, res_id: str, validated: tuple | None
) -> interactions.PreparedBody | None:
    # Only a body that passed validation is worth the work; the interaction reports the others.
    if validated is None or not isinstance(resource, dict):
        return None
    return interactions.prepare(res_type, res_id, resource)


def _present_write(outcome: WriteOutcome, guard: AccessGuard) -> WriteOutcome:
    if not guard.pseudonymises:
        return outcome
    return replace(outcome, stored=interactions.presented(outcome.stored, guard))
