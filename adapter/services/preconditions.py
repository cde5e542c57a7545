"""HTTP preconditions on FHIR versions (If-Match, If-None-Match, If-Modified-Since), for a REST call and
for the Bundle entry that carries the same in request.ifMatch, ifNoneMatch and ifModifiedSince."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapter.errors import InvalidRequestError, PreconditionFailedError
from adapter.store.resources import StoredResource

# One entity tag of a list, weak or strong, quoted or (as some clients send it) not; commas separate them.
_TAG_RE = re.compile(r'\s*(?:W/)?(?:"([^"]*)"|([^,\s]+))\s*(?:,|$)')


@dataclass(frozen=True)
class EntityTags:
    """An If-Match or If-None-Match value: `*`, or a list of entity tags."""

    star: bool
    tags: frozenset[str]

    def matches(self, version_id: int | str) -> bool:
        """Weak comparison (RFC 9110 §8.8.3.2), as If-None-Match uses: W/"3" and "3" both name version 3."""
        return self.star or str(version_id) in self.tags


@dataclass(frozen=True)
class Preconditions:
    """The version preconditions of one write, as the client sent them: the If-Match and If-None-Match
    headers of a REST call, or a Bundle entry's request.ifMatch and ifNoneMatch."""

    if_match: str | None = None
    if_none_match: str | None = None


NO_PRECONDITIONS = Preconditions()


def parse_entity_tags(value: str) -> EntityTags:
    """`*` or a comma-separated list of entity tags; a value that names no version matches none."""
    if value.strip() == "*":
        return EntityTags(True, frozenset())
    return EntityTags(False, frozenset(q or bare for q, bare in _TAG_RE.findall(value) if q or bare))


def parse_if_match(value: str) -> EntityTags:
    """An If-Match value: `*`, or a list of version ETags (W/"3"), any of which may be current.

    Raises InvalidRequestError (400) for a tag that is not a version number.
    """
    tags = parse_entity_tags(value)
    # isascii(): isdigit() also accepts digits such as "²" that int() refuses
    if tags.star or (tags.tags and all(tag.isascii() and tag.isdigit() for tag in tags.tags)):
        return tags
    raise InvalidRequestError(f'If-Match {value!r} is not a version ETag such as W/"3"')


def if_match_holds(tags: EntityTags, current: StoredResource) -> bool:
    """Whether the current version satisfies If-Match: a version it lists (the deletion's too, so that a
    client may bring a resource back knowing the version it saw deleted); `*`, a resource that exists and
    is not deleted (RFC 9110 §13.1.1: any current representation)."""
    if tags.star:
        return not current.deleted
    return current.version_id in {int(tag) for tag in tags.tags}


def refuse_if_match(current: StoredResource, if_match: str | None) -> None:
    """If-Match on a request for an existing resource: 412 when the current version does not satisfy it
    (RFC 9110 §13.1.1: the method is not performed, GET included).

    Raises InvalidRequestError for a malformed value, PreconditionFailedError when it does not hold.
    """
    if if_match and not if_match_holds(parse_if_match(if_match), current):
        raise PreconditionFailedError(
            f"version conflict on {current.res_type}/{current.res_id}: If-Match {if_match!r}, "
            f"current {current.version_id}"
        )


def not_modified(stored: StoredResource, if_none_match: str | None, modified_before_us: int | None) -> bool:
    """Conditional read (http.html cread): True when the client's copy is still current, a 304.

    `modified_before_us` is the end of the moment If-Modified-Since names, to its precision (an HTTP
    date names a whole second): the resource is unmodified when it last changed before that end.
    """
    if if_none_match is not None:
        # RFC 9110 §13.2.2: with If-None-Match, If-Modified-Since is not evaluated. The client named the
        # versions it holds; a date cannot make an older one current.
        return parse_entity_tags(if_none_match).matches(stored.version_id)
    return modified_before_us is not None and stored.last_updated_us < modified_before_us


def refuse_if_none_match(current: StoredResource | None, if_none_match: str | None) -> None:
    """If-None-Match on a write (RFC 9110 §13.1.2): 412 when the resource exists in a version the value
    names, any version for `*` (create only); a deleted resource counts as absent.

    Raises PreconditionFailedError.
    """
    if if_none_match is None or current is None or current.deleted:
        return
    if parse_entity_tags(if_none_match).matches(current.version_id):
        raise PreconditionFailedError(
            f"If-None-Match {if_none_match!r} given but {current.res_type}/{current.res_id} exists "
            f"(version {current.version_id})"
        )
