"""XML reader: records chosen by XPath, values picked by XPath, parsed with the hardened FHIR XML parser."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lxml import etree

from adapter.errors import InvalidSyntaxError
from adapter.fhirio.xml import parse_document
from adapter.mapping.errors import MappingIssue, MappingSpecError, SourceFormatError
from adapter.mapping.readers.base import Accessor, ItemsAccessor, Limits, Record, SourceDocument


def _value(found: Any) -> Any:
    if isinstance(found, etree._Element):
        text = "".join(found.itertext()).strip()
        return text or None
    if isinstance(found, str):
        return found.strip() or None
    if isinstance(found, bool):
        return found
    if isinstance(found, float):
        return None if found != found else Decimal(repr(found)).normalize()
    return found


class XmlReader:
    """Paths are XPath 1.0 expressions relative to the record element, with the spec's namespace prefixes."""

    format = "xml"
    media_types = ("application/xml", "text/xml")

    def __init__(self, options: dict, limits: Limits):
        self.limits = limits
        self.namespaces: dict[str, str] = dict(options.get("namespaces") or {})
        self._prefixes = {uri: prefix for prefix, uri in self.namespaces.items()}
        if "records" not in options:
            raise MappingSpecError("an XML input needs 'records', the XPath of the record elements")
        self.records = self._compile(options["records"], "input.records")

    def _compile(self, text: str, where: str) -> etree.XPath:
        try:
            return etree.XPath(text, namespaces=self.namespaces, smart_strings=False)
        except etree.XPathSyntaxError as exc:
            raise MappingSpecError(f"{where}: invalid XPath '{text}': {exc}") from None

    def read(self, data: bytes, charset: str | None = None) -> SourceDocument:
        self.limits.check_size(data)
        if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise SourceFormatError(f"XML sources must be UTF-8, not {charset}")
        try:
            # The FHIR XML parser's hardening applies to any XML: no DTD, no entities, no network.
            root = parse_document(data)
        except InvalidSyntaxError as exc:
            raise SourceFormatError(exc.message.replace("FHIR XML", "XML")) from None
        try:
            found = self.records(root)
        except etree.XPathError as exc:
            raise SourceFormatError(f"cannot select the records: {exc}") from None
        elements = [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []
        self.limits.check_count(len(elements), "records")
        records = []
        for index, element in enumerate(elements, start=1):
            size = len(etree.tostring(element))
            location = self.location(element)
            if size > self.limits.max_record_bytes:
                records.append(
                    Record(
                        index,
                        location,
                        error=MappingIssue(
                            "error",
                            f"the element is {size} bytes, more than the limit of "
                            f"{self.limits.max_record_bytes}",
                            source=location,
                        ),
                    )
                )
                continue
            records.append(Record(index, location, data=element))
        return SourceDocument(records)

    def location(self, element: etree._Element) -> str:
        """An XPath to the element with the spec's prefixes and positions (/p:receptions/p:reception[2])."""
        steps = []
        node: etree._Element | None = element
        while node is not None:
            qname = etree.QName(node)
            prefix = self._prefixes.get(qname.namespace or "")
            name = (
                f"{prefix}:{qname.localname}"
                if prefix
                else qname.localname
                if not qname.namespace
                else node.tag
            )
            parent = node.getparent()
            if parent is not None:
                same = [s for s in parent if s.tag == node.tag]
                if len(same) > 1:
                    name += f"[{same.index(node) + 1}]"
            steps.append(name)
            node = parent
        return "/" + "/".join(reversed(steps))

    def path(self, text: str, where: str, many: bool = False) -> Accessor:
        xpath = self._compile(text, where)

        def access(node: Any) -> Any:
            found = xpath(node)
            if not isinstance(found, list):
                return _value(found)
            if many:
                return [v for v in (_value(f) for f in found) if v is not None]
            for item in found:
                value = _value(item)
                if value is not None:
                    return value
            return None

        return access

    def items(self, text: str, where: str) -> ItemsAccessor:
        xpath = self._compile(text, where)

        def items(node: Any, location: str) -> list[tuple[str, Any]]:
            found = xpath(node)
            elements = [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []
            return [(self.location(e), e) for e in elements]

        return items

    def describe(self, text: str) -> str:
        return text.strip()
