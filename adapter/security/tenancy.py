"""Who may see and change what: scopes, organisation labels, and the manufacturer's pseudonymised view.

Every stored resource carries access labels: the hospital that wrote it (`finess|<FINESS>`), and for a
Task the manufacturer that owns it (`Organization/<id>`), a label the Task passes on to what it points
to. A client sees a resource when they share a label; anything else looks as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from adapter.errors import ForbiddenError
from adapter.fhirio.jsonio import dump_json, parse_stored_json
from adapter.search.extract import IDENTIFIER, OF_TYPE, local_reference
from adapter.security.clients import Client

# Resources a manufacturer may create: what comes back from manufacturing and shipping.
MANUFACTURER_CREATES = frozenset(
    {"Observation", "BiologicallyDerivedProduct", "Device", "DocumentReference", "Provenance", "Binary"}
)
# Elements of a Task a manufacturer may not change: who and what the order is about, and who owns it.
_TASK_FIXED = ("for", "focus", "basedOn", "owner", "requester", "intent", "identifier")
# The server writes these itself; no client writes them through the FHIR API.
SERVER_ONLY_TYPES = frozenset({"AuditEvent"})
# Patient elements a manufacturer may be allowed to see, and the search parameter that reads each.
_PATIENT_PARAMS = {"birthDate": "birthdate", "gender": "gender"}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    client: Client
    scope_text: str
    source: str = ""

    @property
    def role(self) -> str:
        return self.client.role


def reference_texts(node: Any) -> Iterator[str]:
    """The text of every `reference` inside a resource."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("reference")
            if isinstance(ref, str):
                yield ref
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))


def references(node: Any) -> Iterator[tuple[str, str]]:
    """Every literal reference (type, id) to a resource of this server inside a resource: those are the
    resources whose labels a manufacturer's result takes (another server's Task/1 is not ours)."""
    for ref in reference_texts(node):
        local = local_reference(ref)
        if local:
            yield local


def task_owner(task: dict) -> str | None:
    """The label of the manufacturer that owns a Task: `Organization/<id>` of its owner when that is an
    Organization of this server. "Organization/kite-eu/_history/1", or the same on this server's base
    URL, is Organization/kite-eu all the same; another server's Organization/kite-eu is not."""
    owner = task.get("owner")
    text = owner.get("reference") if isinstance(owner, dict) else None
    local = local_reference(text) if isinstance(text, str) else None
    return f"Organization/{local[1]}" if local and local[0] == "Organization" else None


@dataclass
class AccessGuard:
    """The rules for one principal; `None` principal means the server itself (no restriction)."""

    principal: Principal | None
    coi_systems: tuple[str, ...] = ()
    _scopes: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.principal is not None:
            from adapter.security.scopes import ScopeSet

            self._scopes = ScopeSet.parse(self.principal.scope_text)

    # -- scopes ----------------------------------------------------------------------------------
    def require(self, res_type: str, permission: str) -> None:
        """Raise 403 unless the token's scopes grant `permission` (c, r, u, d or s) on `res_type`."""
        if self.principal is None:
            return
        if res_type in SERVER_ONLY_TYPES and permission in "cud":
            raise ForbiddenError(f"{res_type} is written by the server only")
        if res_type == "AuditEvent" and self.principal.role != "admin":
            raise ForbiddenError("the audit trail is readable by administrators only")
        if self.principal.role == "engineer":
            raise ForbiddenError(
                "interface engineer clients validate and dry-run; they do not reach stored data"
            )
        if not self._scopes.allows(res_type, permission):
            raise ForbiddenError(f"the token's scopes do not allow '{permission}' on {res_type}")

    def permits(self, res_type: str, permission: str) -> bool:
        try:
            self.require(res_type, permission)
        except ForbiddenError:
            return False
        return True

    def check_search(self, res_type: str, conditions: Iterable[Any], sort: Iterable[str] = ()) -> None:
        """A pseudonymised reader may not search, or sort, on what it cannot see: a match would reveal
        it, and so would an order.

        A chained condition (`Task?patient.name=...`) searches the target type and `_has` the source
        type, so each is held to the rules of a search on that type.
        """
        if not self.pseudonymises:
            return
        conditions = list(conditions)
        for condition in conditions:
            if condition.code.endswith((IDENTIFIER, OF_TYPE)):
                # Identifiers in references and identifier types may be patients' (an INS).
                name = condition.code.rpartition(":")[2]
                raise ForbiddenError(f"searches with :{name} are not available to manufacturers")
            if condition.type == "chain":
                targets, inner = condition.values
                for target in targets:
                    self.check_search(target, [inner])
            elif condition.type == "has":
                source, _, inner = condition.values
                self.check_search(source, [inner])
        if res_type != "Patient":
            return
        allowed = {"_id", "_lastUpdated", "identifier"} | set(self.principal.client.patient_fields)  # type: ignore[union-attr]
        allowed = {_PATIENT_PARAMS.get(name, name) for name in allowed}
        # identifier may be searched (for the chain-of-identity number) but not sorted by: the order of
        # all of a patient's identifiers would tell their INS apart.
        for code in sort:
            if code not in allowed or code == "identifier":
                raise ForbiddenError(f"sorting patients by {code} is not available to manufacturers")
        for condition in conditions:
            if condition.type in ("chain", "has") or condition.code not in allowed:
                raise ForbiddenError(f"Patient search on {condition.code} is not available to manufacturers")
            if condition.code == "identifier" and any(
                system not in self.coi_systems for system, _ in condition.values
            ):
                raise ForbiddenError("manufacturers search patients by chain-of-identity identifier only")

    # -- visibility ------------------------------------------------------------------------------
    @property
    def visible_labels(self) -> frozenset[str] | None:
        """Labels a resource needs one of to be visible; None = everything is visible."""
        if self.principal is None or self.principal.role == "admin":
            return None
        tenant = self.principal.client.tenant
        return frozenset({tenant}) if tenant else frozenset()

    def can_see(self, labels: Iterable[str]) -> bool:
        visible = self.visible_labels
        return visible is None or bool(visible & set(labels))

    # -- writes ----------------------------------------------------------------------------------
    def check_create(self, res_type: str, resource: dict, referenced_labels: set[str]) -> None:
        if self.principal is None or self.principal.role in ("admin", "hospital"):
            return
        tenant = self.principal.client.tenant
        if res_type not in MANUFACTURER_CREATES:
            raise ForbiddenError(f"a manufacturer may not create {res_type}")
        if res_type != "Device" and tenant not in referenced_labels:
            raise ForbiddenError(f"a manufacturer's {res_type} must refer to one of its own orders")

    def check_update(
        self, res_type: str, exists: bool, current: dict | None, new: dict, current_labels: set[str]
    ) -> None:
        """Writes to resources of other organisations are refused with 403.

        `current` is the parsed current version, needed only for a manufacturer's Task checks.
        """
        if self.principal is None or self.principal.role == "admin":
            return
        tenant = self.principal.client.tenant
        if exists and tenant not in current_labels:
            raise ForbiddenError(f"{res_type}/{new.get('id')} belongs to another organisation")
        if self.principal.role == "manufacturer":
            if not exists or current is None:
                raise ForbiddenError("a manufacturer updates existing orders; it does not create them by PUT")
            if res_type == "Task":
                if task_owner(current) != tenant:
                    raise ForbiddenError("a manufacturer may update only the Tasks it owns")
                # Compared as the manufacturer sees them: its view has no reference displays.
                changed = [
                    name
                    for name in _TASK_FIXED
                    if _strip_names(current.get(name)) != _strip_names(new.get(name))
                ]
                if changed:
                    raise ForbiddenError(
                        f"a manufacturer may not change Task.{changed[0]}", expression=f"Task.{changed[0]}"
                    )
            elif res_type not in MANUFACTURER_CREATES:
                raise ForbiddenError(f"a manufacturer may not update {res_type}")

    def restore_hidden(self, res_type: str, current: dict | None, new: dict) -> dict:
        """A manufacturer's Task update with what its view hid put back from the stored version.

        Its view had the reference displays of the fixed elements stripped (check_update made sure it
        changed nothing else in them), the narrative removed and contained Patients pseudonymised: what it
        sends back must not erase what the hospital wrote. A narrative the manufacturer sends replaces
        the stored one; it could not have seen that one.
        """
        if not self.pseudonymises or res_type != "Task" or current is None:
            return new
        restored = {
            name: current[name] for name in _TASK_FIXED if name in current and new.get(name) != current[name]
        }
        text = current.get("text")
        if "text" not in new and isinstance(text, dict) and "div" in text:
            restored["text"] = text
        # Contained Patients are seen pseudonymised and cannot be changed by a manufacturer: the stored
        # ones stand, whatever came back under their ids.
        stored = {
            c.get("id"): c
            for c in current.get("contained") or ()
            if isinstance(c, dict) and c.get("resourceType") == "Patient"
        }
        if stored:
            sent = [
                c for c in new.get("contained") or () if not (isinstance(c, dict) and c.get("id") in stored)
            ]
            restored["contained"] = [*sent, *stored.values()]
        return {**new, **restored} if restored else new

    def check_delete(self, res_type: str, current_labels: set[str]) -> None:
        if self.principal is None or self.principal.role == "admin":
            return
        if self.principal.role != "hospital" or self.principal.client.tenant not in current_labels:
            raise ForbiddenError(f"this client may not delete this {res_type}")

    def labels_for(self, res_type: str, resource: dict, referenced_labels: set[str]) -> set[str]:
        """Labels of a newly written version: the writer's organisation, a Task's owner, and for a
        manufacturer's result the organisations of the order it belongs to."""
        labels: set[str] = set()
        tenant = self.principal.client.tenant if self.principal else None
        if tenant:
            labels.add(tenant)
        if res_type == "Task":
            owner = task_owner(resource)
            if owner:
                labels.add(owner)
        if self.principal is not None and self.principal.role == "manufacturer":
            labels |= referenced_labels
        return labels

    # -- reading -------------------------------------------------------------------------------------
    @property
    def pseudonymises(self) -> bool:
        return self.principal is not None and self.principal.role == "manufacturer"

    def present(self, res_type: str, content: str) -> str:
        """The stored JSON as this principal may see it (a manufacturer gets a pseudonymised view)."""
        if not self.pseudonymises:
            return content
        if res_type != "Patient" and not any(key in content for key in _NAME_CARRIERS):
            # Stored JSON writes keys literally (no escapes): without these keys there is nothing to
            # strip, and a manufacturer's poll is spared parsing and re-writing every Task.
            return content
        resource = parse_stored_json(content)
        return dump_json(self.minimise(res_type, resource))

    def minimise(self, res_type: str, resource: dict) -> dict:
        assert self.principal is not None
        if res_type == "Patient":
            keep = {"resourceType", "id", "meta"} | set(self.principal.client.patient_fields)
            out = {k: v for k, v in resource.items() if k in keep}
            coi = [i for i in resource.get("identifier", []) if i.get("system") in self.coi_systems]
            if coi:
                out["identifier"] = coi
            return out
        return _strip_names(resource, lambda patient: self.minimise("Patient", patient))


# The keys _strip_names acts on, as they appear in stored JSON.
_NAME_CARRIERS = ('"div"', '"display"', '"contained"')


def _strip_names(node: Any, patient: Callable[[dict], dict] | None = None) -> Any:
    """Drop narrative and the display text of references, where names of patients travel; contained
    Patients become `patient(contained)` (the pseudonymised view, so local references still resolve),
    or are dropped when no such function is given (comparisons)."""
    if isinstance(node, list):
        return [_strip_names(item, patient) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "text" and isinstance(value, dict) and "div" in value:
            continue
        if key == "display" and "reference" in node:
            continue
        if key == "contained" and isinstance(value, list):
            kept = []
            for c in value:
                if isinstance(c, dict) and c.get("resourceType") == "Patient":
                    if patient is not None:
                        kept.append(patient(c))
                else:
                    kept.append(_strip_names(c, patient))
            if kept:
                out[key] = kept
            continue
        out[key] = _strip_names(value, patient)
    return out
