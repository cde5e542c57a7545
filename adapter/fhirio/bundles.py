"""Bundles assembled from stored JSON text, so that reads never re-serialise stored resources."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

_quote = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True)
class HistoryEntry:
    full_url: str
    content: str | None
    method: str
    url: str
    status: str
    etag: str
    last_modified: str


def _links(links: Iterable[tuple[str, str]]) -> str:
    return ",".join('{"relation":' + _quote(rel) + ',"url":' + _quote(url) + "}" for rel, url in links)


def _head(bundle_type: str, now: str, total: int | None, links: list[tuple[str, str]]) -> str:
    text = (
        '{"resourceType":"Bundle","id":'
        + _quote(str(uuid.uuid4()))
        + ',"meta":{"lastUpdated":'
        + _quote(now)
        + '},"type":'
        + _quote(bundle_type)
    )
    if total is not None:
        text += ',"total":' + str(total)
    if links:
        text += ',"link":[' + _links(links) + "]"
    return text


def searchset(
    entries: Iterable[tuple[str, str]],
    *,
    total: int | None,
    links: list[tuple[str, str]],
    now: str,
    outcome: str | None = None,
    included: Iterable[tuple[str, str]] = (),
) -> str:
    """A searchset Bundle from (fullUrl, stored resource JSON) pairs; `outcome` is an OperationOutcome."""
    parts = [
        '{"fullUrl":' + _quote(url) + ',"resource":' + content + ',"search":{"mode":"match"}}'
        for url, content in entries
    ]
    parts.extend(
        '{"fullUrl":' + _quote(url) + ',"resource":' + content + ',"search":{"mode":"include"}}'
        for url, content in included
    )
    if outcome:
        parts.append('{"resource":' + outcome + ',"search":{"mode":"outcome"}}')
    body = _head("searchset", now, total, links)
    if parts:
        body += ',"entry":[' + ",".join(parts) + "]"
    return body + "}"


def history(
    entries: Iterable[HistoryEntry], *, total: int | None, links: list[tuple[str, str]], now: str
) -> str:
    parts = []
    for e in entries:
        text = '{"fullUrl":' + _quote(e.full_url)
        if e.content is not None:
            text += ',"resource":' + e.content
        text += (
            ',"request":{"method":'
            + _quote(e.method)
            + ',"url":'
            + _quote(e.url)
            + "}"
            + ',"response":{"status":'
            + _quote(e.status)
            + ',"etag":'
            + _quote(e.etag)
            + ',"lastModified":'
            + _quote(e.last_modified)
            + "}}"
        )
        parts.append(text)
    body = _head("history", now, total, links)
    if parts:
        body += ',"entry":[' + ",".join(parts) + "]"
    return body + "}"
