"""Compartment search (http.html search, compartments.html): `[base]/Patient/[id]/Procedure?...` finds
the Procedures in that patient's compartment, as the core CompartmentDefinitions place them there."""

from __future__ import annotations

from adapter.definitions import compartments
from adapter.errors import InvalidRequestError
from adapter.search.params import own_base, params_for
from adapter.search.query import Condition

# "{def}" in a CompartmentDefinition: the compartment's own resource (Encounter/5 is in its compartment).
_ITSELF = "{def}"


def unindexed(res_type: str, codes: tuple[str, ...]) -> list[str]:
    """The parameters among `codes` that this server does not index for `res_type` (a parameter
    selection, CART_ADAPTER_SEARCH_PARAMETERS, may leave some out); "{def}" needs none."""
    known = params_for(res_type)
    return [code for code in codes if code != _ITSELF and code not in known]


def condition(
    res_type: str,
    compartment: str,
    ident: str,
    *,
    server_base: str | None = None,
    codes: tuple[str, ...] | None = None,
) -> Condition:
    """The search condition that keeps resources of `res_type` in the compartment `compartment`/`ident`;
    `codes`: the parameters that place them there, when not those of the core definition.

    Raises:
        InvalidRequestError: `compartment` is no compartment type, `res_type` has no resource in such a
            compartment, or a parameter the compartment needs is not indexed on this server.
    """
    defined = compartments()
    if compartment not in defined:
        raise InvalidRequestError(
            f"{compartment} is not a compartment; the compartments are {', '.join(sorted(defined))}",
            expression=compartment,
        )
    codes = codes or defined[compartment].members.get(res_type)
    if not codes:
        raise InvalidRequestError(
            f"{res_type} is never in a {compartment} compartment in FHIR R4; search {res_type} with a "
            f"reference parameter instead",
            expression=res_type,
        )
    if codes == (_ITSELF,):
        return Condition("_id", "_id", "", (ident,))
    missing = unindexed(res_type, codes)
    if missing:
        raise InvalidRequestError(
            f"the {compartment} compartment places {res_type} by {', '.join(codes)}, and "
            f"{', '.join(missing)} is not indexed here (CART_ADAPTER_SEARCH_PARAMETERS)",
            expression=res_type,
        )
    return Condition(
        f"_compartment:{compartment}",
        "compartment",
        "",
        (codes, reference_keys(compartment, ident, server_base)),
    )


def reference_keys(res_type: str, ident: str, server_base: str | None) -> tuple[tuple[str, str], ...]:
    """The (type, key) pairs under which references to `res_type`/`ident` are indexed: by type and id;
    without a configured public base, absolute references on the base the request came in at are
    indexed by their URL (search.extract.reference_key)."""
    keys: tuple[tuple[str, str], ...] = ((res_type, ident),)
    if server_base and not own_base():
        keys += ((res_type, f"{server_base.rstrip('/')}/{res_type}/{ident}"),)
    return keys
