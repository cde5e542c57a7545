"""Patient/$everything (R4 OperationDefinition Patient-everything): a patient's record in one Bundle.

The patient, every resource of its compartment the caller may see, and what those refer to (the
practitioners, organisations, medications and devices of the pathway), as a searchset Bundle. Beyond
the R4 Patient compartment, the Tasks whose `for` is the patient come too: R4 leaves Task out of the
compartment, and a CAR-T order's Task is part of the patient's pathway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapter.definitions import compartments
from adapter.errors import ForbiddenError, InvalidRequestError, Issue
from adapter.fhirio import bundles
from adapter.fhirio.jsonio import dump_json
from adapter.fhirio.outcome import operation_outcome
from adapter.search import compartments as compartment_search
from adapter.search.dates import date_range, format_instant
from adapter.search.params import params_for
from adapter.security.tenancy import AccessGuard
from adapter.services import interactions, searching
from adapter.store.resources import ResourceStore, StoredResource

# At most this many compartment resources, and as many referred-to ones, in one Bundle (no paging).
EVERYTHING_LIMIT = 1000
_EXTRA_MEMBERS = {"Task": ("patient",)}
# The operation's other parameters: start and end (care dates) and _count (paging) are not offered.
_UNSUPPORTED = {"start", "end", "_count"}


@dataclass
class Options:
    since: str | None = None  # an instant, as given
    types: frozenset[str] | None = None
    warnings: list[Issue] = field(default_factory=list)


@dataclass
class Everything:
    patient: StoredResource
    matches: list[StoredResource]
    included: list[StoredResource]
    warnings: list[Issue]


def parse_options(args: list[tuple[str, str]], *, strict: bool) -> Options:
    """_since (an instant) and _type (resource types, comma-separated) of $everything.

    Raises:
        InvalidRequestError: a malformed _since or _type, or (strict handling) a parameter not offered.
    """
    options = Options()
    for name, raw in args:
        if name == "_since":
            # As in history: an instant, or a date read from its start (UTC when no zone is given).
            if date_range(raw) is None:
                raise InvalidRequestError(f"_since {raw[:40]!r} is not an instant", expression="_since")
            options.since = raw
        elif name == "_type":
            wanted = {t.strip() for t in raw.split(",") if t.strip()}
            unknown = sorted(t for t in wanted if not interactions.is_type(t))
            if unknown:
                raise InvalidRequestError(
                    f"_type: {', '.join(unknown)} is no resource type", expression="_type"
                )
            options.types = (options.types or frozenset()) | frozenset(wanted)
        elif name in ("_format", "_pretty"):
            continue
        else:
            name = name[:100]
            message = (
                f"$everything does not take {name} here (no paging; up to {EVERYTHING_LIMIT} resources)"
                if name in _UNSUPPORTED
                else f"$everything has no parameter {name!r}"
            )
            if strict:
                raise InvalidRequestError(message, expression=name)
            options.warnings.append(Issue("warning", "not-supported", message + "; ignored", (name,)))
    return options


def members() -> dict[str, tuple[str, ...]]:
    """Resource type -> the parameters that put it in a patient's record."""
    return {**compartments()["Patient"].members, **_EXTRA_MEMBERS}


def run(store: ResourceStore, patient_id: str, options: Options, guard: AccessGuard, base: str) -> Everything:
    """The record, read in one snapshot (`store` is a read transaction)."""
    patient = interactions.read(store, "Patient", patient_id, guard=guard)
    warnings = list(options.warnings)
    seen = {patient.pk}
    uncovered: list[str] = []
    links: list[tuple[str, str]] = []
    for res_type, codes in sorted(members().items()):
        if options.types is not None and res_type not in options.types:
            continue
        if not guard.permits(res_type, "s"):
            continue  # the caller's scopes do not reach this type: nothing of it is theirs to see
        missing = compartment_search.unindexed(res_type, codes)
        if missing:
            # A parameter selection left some out: what the others find still belongs to the record.
            uncovered.append(res_type)
            codes = tuple(code for code in codes if code not in missing)
            if not codes:
                continue
        condition = compartment_search.condition(
            res_type, "Patient", patient_id, server_base=base, codes=codes
        )
        try:
            # What the caller could not search for itself ($everything is no way round it): a
            # manufacturer may not search Patients by their links.
            guard.check_search(res_type, [condition])
        except ForbiddenError:
            continue
        links.extend((res_type, code) for code in codes)
    # One statement for every type of the record: what points at the patient through those links.
    found = store.referring(
        links,
        list(compartment_search.reference_keys("Patient", patient_id, base)),
        guard.visible_labels,
        limit=EVERYTHING_LIMIT + 2,  # the patient itself may come back (Patient.link), and one more
        updated_since=date_range(options.since)[0] if options.since else None,
    )
    matches = [r for r in found if r.pk not in seen]
    if len(matches) > EVERYTHING_LIMIT:
        warnings.append(_cut("resources of the patient's record"))
        matches = matches[:EVERYTHING_LIMIT]
    seen.update(r.pk for r in matches)
    if uncovered:
        warnings.append(
            Issue(
                "warning",
                "incomplete",
                f"{len(uncovered)} resource types may be missing from the record: parameters that "
                "place them in it are not indexed here (CART_ADAPTER_SEARCH_PARAMETERS): "
                + ", ".join(uncovered),
            )
        )
    return Everything(
        patient, matches, _referred(store, [patient, *matches], seen, guard, warnings), warnings
    )


def _referred(
    store: ResourceStore,
    sources: list[StoredResource],
    seen: set[int],
    guard: AccessGuard,
    warnings: list[Issue],
) -> list[StoredResource]:
    """What the record's resources refer to (one step), new and visible to the caller."""
    by_type: dict[str, list[int]] = {}
    for r in sources:
        by_type.setdefault(r.res_type, []).append(r.pk)
    out: list[StoredResource] = []
    for res_type, pks in by_type.items():
        references = [(code, None) for code, p in params_for(res_type).items() if p.type == "reference"]
        for r in store.included(res_type, references, pks, guard.visible_labels):
            if r.pk in seen or not guard.permits(r.res_type, "r"):
                continue
            if len(out) == EVERYTHING_LIMIT:
                warnings.append(_cut("resources the record refers to"))
                return out
            seen.add(r.pk)
            out.append(r)
    return out


def _cut(what: str) -> Issue:
    return Issue(
        "warning",
        "too-costly",
        f"more than {EVERYTHING_LIMIT} {what}: only the first {EVERYTHING_LIMIT} are in this Bundle "
        "(ask for fewer with _type or _since)",
    )


def bundle_text(record: Everything, base: str, self_link: str, now_us: int, guard: AccessGuard) -> str:
    """The searchset Bundle: the patient and its record as matches, what they refer to as includes."""

    def entry(r: StoredResource) -> tuple[str, str]:
        return searching.entry_text(r, base, guard)

    outcome = dump_json(operation_outcome(record.warnings)) if record.warnings else None
    return bundles.searchset(
        (entry(r) for r in [record.patient, *record.matches]),
        total=1 + len(record.matches),
        links=[("self", self_link)],
        now=format_instant(now_us),
        outcome=outcome,
        included=(entry(r) for r in record.included),
    )
