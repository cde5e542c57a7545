"""Content negotiation and body parsing for FHIR JSON and XML."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from flask import Request, Response, has_request_context, request
from werkzeug.http import parse_options_header

from adapter.errors import NotAcceptableError, UnsupportedMediaTypeError
from adapter.fhirio.jsonio import dump_json, dump_json_pretty, parse_json

JSON = "application/fhir+json"
XML = "application/fhir+xml"
_JSON_TYPES = {"application/fhir+json", "application/json", "text/json", "json", "application/json+fhir"}
_XML_TYPES = {"application/fhir+xml", "application/xml", "text/xml", "xml", "application/xml+fhir"}
# http.html mime-type: asked for a generic type, the server SHOULD answer with that type, in the FHIR
# JSON or XML format. The short _format codes and the pre-STU3 types get the FHIR types.
_GENERIC_TYPES = ("application/json", "text/json", "application/xml", "text/xml")


# The media types this server writes, in the order it prefers them when a client rates several alike.
_OFFERED = (JSON, XML, *_GENERIC_TYPES)


def _fhir_r4(version: str | None) -> bool:
    """Whether a fhirVersion MIME-type parameter (http.html version-parameter) names R4: 4.0, or a 4.0.x
    that some clients send; absent, the server's own version."""
    return version is None or version == "4.0" or version.startswith("4.0.")


def _wrong_version(version: str) -> str:
    return f"fhirVersion {version!r} is not supported: this server is FHIR R4 (fhirVersion=4.0)"


def response_format(request: Request) -> str:
    """The media type of the response, from _format first, then Accept: the FHIR JSON or XML type, or the
    generic JSON or XML type the client named; FHIR JSON when the client does not mind."""
    wanted = request.args.get("_format")
    if wanted:
        base, params = parse_options_header(wanted)
        base = base.lower()
        version = params.get("fhirversion")
        if not _fhir_r4(version):
            raise NotAcceptableError(_wrong_version(str(version)), expression="_format")
        if base in _GENERIC_TYPES:
            return base
        if base in _XML_TYPES:
            return XML
        if base in _JSON_TYPES:
            return JSON
        raise NotAcceptableError(f"_format {wanted!r} is not supported (json or xml)", expression="_format")
    return _from_accept(request.headers.get("Accept", ""))


def is_xml(fmt: str) -> bool:
    """Whether a media type response_format chose is written in the FHIR XML format."""
    return fmt in _XML_TYPES


@lru_cache(maxsize=64)
def _from_accept(header: str) -> str:
    # A client sends the same Accept header on every request; parsing it again each time showed up in
    # the profile of a Task poll.
    if not header.strip():
        return JSON
    ranges: dict[str, float] = {}  # media range -> quality
    refused: str | None = None
    for item in header.split(","):
        # Parameters (fhirVersion, q) are read, not matched as part of the type: werkzeug's matching took
        # "application/fhir+xml; fhirVersion=4.0" for a type this server does not write.
        media, params = parse_options_header(item)
        version = params.get("fhirversion")
        if not _fhir_r4(version):
            refused = version
            continue
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            continue
        if not math.isnan(quality):  # "q=nan" rates nothing, and would make every comparison false
            ranges[media.lower()] = quality
    # RFC 9110 §12.5.1: each type takes the quality of the most specific range that names it, so that
    # "application/fhir+json;q=0, */*" refuses FHIR JSON and takes anything else; q=0 is not acceptable.
    # Among types rated alike, the server's order of preference decides.
    rated = [(_quality(offered, ranges), -rank) for rank, offered in enumerate(_OFFERED)]
    quality, best = max(rated)
    if quality > 0:
        return _OFFERED[-best]
    if refused is not None:
        raise NotAcceptableError(_wrong_version(refused))
    # http.html mime-type: 406 is the answer when Accept asks only for formats the server does not write.
    raise NotAcceptableError(f"Accept {header[:100]!r}: this server writes {', '.join(_OFFERED)}")


def _quality(offered: str, ranges: dict[str, float]) -> float:
    """The quality Accept gives a media type: that of its own range, else of its type's (text/*), else
    of */*; 0 when none names it."""
    for media in (offered, offered.partition("/")[0] + "/*", "*/*"):
        if media in ranges:
            return ranges[media]
    return 0.0


def parse_body(request: Request, max_depth: int) -> Any:
    """The request body as a FHIR JSON structure, whichever of JSON or XML it came in."""
    content_type = (request.mimetype or "").lower()
    version = request.mimetype_params.get("fhirversion")
    if not _fhir_r4(version):
        raise UnsupportedMediaTypeError(_wrong_version(str(version)))
    data = request.get_data(cache=False)
    if content_type in _XML_TYPES:
        from adapter.fhirio.xml import parse_xml

        return parse_xml(data)
    if content_type in _JSON_TYPES or (content_type == "" and data[:1] in (b"{", b"[")):
        return parse_json(data, max_depth=max_depth)
    raise UnsupportedMediaTypeError(
        f"Content-Type {request.content_type!r} is not supported; "
        "send application/fhir+json or application/fhir+xml"
    )


def _pretty() -> bool:
    # _pretty=true (http.html general parameters): indented for a human reader, the same content.
    # Read from the raw query: an error response must render even when the query is not UTF-8.
    if not has_request_context() or b"_pretty" not in request.query_string:
        return False
    return b"_pretty=true" in request.query_string.split(b"&")


def render(body: dict | str | None, fmt: str, status: int = 200, headers: dict | None = None) -> Response:
    """A FHIR response; `body` is a resource dict, or JSON text as stored."""
    if body is None:
        return Response(status=status, headers=headers)
    pretty = _pretty()
    if is_xml(fmt):
        from adapter.fhirio.xml import serialise_xml

        resource = parse_json(body, max_depth=1000) if isinstance(body, str) else body
        payload: str | bytes = serialise_xml(resource, pretty=pretty)
    elif pretty:
        payload = dump_json_pretty(parse_json(body, max_depth=1000) if isinstance(body, str) else body)
    else:
        payload = body if isinstance(body, str) else dump_json(body)
    return Response(payload, status=status, headers=headers, content_type=f"{fmt}; charset=utf-8")
