"""FHIR XML to and from the FHIR JSON form (plain Python objects), with hardened XML parsing."""

from __future__ import annotations

import codecs
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from adapter.definitions import JsonChild, TypeInfo, element_info, resource_types
from adapter.errors import InvalidSyntaxError

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_F = "{" + FHIR_NS + "}"
_X = "{" + XHTML_NS + "}"
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Scanned before lxml sees the bytes, so no DTD machinery is ever reached.
_FORBIDDEN = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INT32 = (-(2**31), 2**31 - 1)
_INT_FLOOR = {"positiveInt": 1, "unsignedInt": 0}


def _error(message: str, expression: str | None = None, line: int | None = None) -> InvalidSyntaxError:
    where = f" at {expression}" if expression else ""
    at_line = f" (line {line})" if line else ""
    return InvalidSyntaxError(f"{message}{where}{at_line}", expression=expression)


def _new_parser() -> etree.XMLParser:
    # A fresh parser per document: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_document(data: bytes) -> etree._Element:
    """Parse untrusted XML bytes; refuse DTDs/entities, non-UTF-8 input and malformed XML."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _error("XML input must be bytes")
    data = bytes(data)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(f"XML is not valid UTF-8 (bad byte at offset {exc.start})") from None
    declared = _DECLARED_ENCODING.match(data)
    if declared and declared.group(1).decode("ascii").lower() not in ("utf-8", "utf8"):
        raise _error(f"XML must be encoded in UTF-8, not {declared.group(1).decode('ascii')}")
    forbidden = _FORBIDDEN.search(text)
    if forbidden:
        line = text.count("\n", 0, forbidden.start()) + 1
        raise _error("DOCTYPE and entity declarations are not allowed in FHIR XML", line=line)
    try:
        root = etree.fromstring(data, _new_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        raise _error(f"XML is not well-formed: {getattr(exc, 'msg', None) or exc}", line=line) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _error("DOCTYPE declarations are not allowed in FHIR XML")
    return root


def _split(tag: Any) -> tuple[str, str]:
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


# --------------------------------------------------------------------------- XML -> dict


def parse_xml(data: bytes) -> dict:
    """Read a FHIR XML resource into its FHIR JSON form (Decimal for decimals, int, bool, lists)."""
    root = parse_document(data)
    try:
        return _read_resource(root, "")
    except RecursionError:
        raise _error("XML is nested too deeply") from None


def _read_resource(el: etree._Element, expr: str) -> dict:
    ns, name = _split(el.tag)
    if ns != FHIR_NS:
        found = f"namespace '{ns}'" if ns else "no namespace"
        raise _error(
            f"Element '{name}' must be in the FHIR namespace {FHIR_NS}, found {found}", expr, el.sourceline
        )
    if name not in resource_types():
        raise _error(f"Unknown resource type '{name}'", expr or None, el.sourceline)
    # A nested resource keeps its container's path (Bundle.entry[0].resource.id), as FHIRPath does.
    expr = expr or name
    for attr in el.attrib:
        if _split(attr)[0] != XSI_NS:
            raise _error(f"Unexpected attribute '{attr}' on resource", expr, el.sourceline)
    out: dict[str, Any] = {"resourceType": name}
    _read_children(el, element_info(name), name, expr, out)
    return out


def _read_complex(el: etree._Element, info: TypeInfo, path: str, expr: str) -> dict:
    out: dict[str, Any] = {}
    for attr, value in el.attrib.items():
        child = info.child(path, attr)
        if child is None or not child.element.xml_attr:
            if _split(attr)[0] == XSI_NS:
                continue
            raise _error(f"Unexpected attribute '{attr}'", expr, el.sourceline)
        if not value:
            raise _error(f"Attribute '{attr}' must not be empty", expr, el.sourceline)
        out[attr] = value
    _read_children(el, info, path, expr, out)
    if not out:
        raise _error("Element has no attributes or children", expr, el.sourceline)
    return out


def _check_no_text(el: etree._Element, expr: str) -> None:
    for text in (el.text, *(child.tail for child in el)):
        if text and text.strip():
            raise _error(f"Unexpected text content {text.strip()[:40]!r}", expr, el.sourceline)


def _read_children(el: etree._Element, info: TypeInfo, path: str, expr: str, out: dict) -> None:
    _check_no_text(el, expr)
    lists: dict[str, tuple[list, list]] = {}
    seen: set[str] = set()
    for child_el in el:
        ns, name = _split(child_el.tag)
        child = info.child(path, name)
        allowed_ns = XHTML_NS if child is not None and child.element.xhtml else FHIR_NS
        if child is None or child.element.xml_attr or ns != allowed_ns:
            what = f"'{name}'" if ns in (FHIR_NS, XHTML_NS) else f"'{name}' in namespace '{ns}'"
            raise _error(f"Unknown element {what}", expr, child_el.sourceline)
        element = child.element
        if element.is_list:
            if name not in lists:
                lists[name] = ([], [])
                out[name] = lists[name][0]  # placed now so JSON keys follow the XML order
            values, extras = lists[name]
            child_expr = f"{expr}.{name}[{len(values)}]"
        else:
            if element.path in seen:
                raise _error(f"Element '{name}' may occur only once", f"{expr}.{name}", child_el.sourceline)
            seen.add(element.path)
            child_expr = f"{expr}.{name}"
        value, extra = _read_child(child_el, info, child, child_expr)
        if element.is_list:
            values.append(value)
            extras.append(extra)
        else:
            if value is not None:
                out[name] = value
            if extra is not None:
                out["_" + name] = extra
    for name, (values, extras) in lists.items():
        # FHIR JSON keeps value and `_name` arrays aligned, with null where one side is absent.
        if all(v is None for v in values):
            del out[name]
        if any(x is not None for x in extras):
            out["_" + name] = extras


def _read_child(el: etree._Element, info: TypeInfo, child: JsonChild, expr: str) -> tuple[Any, dict | None]:
    if child.element.xhtml:
        return _read_xhtml(el), None
    if child.json_type is not None:
        return _read_primitive(el, child, expr)
    if child.type_code == "Resource":
        return _read_wrapped_resource(el, expr), None
    if child.element.children_path:
        return _read_complex(el, info, child.element.children_path, expr), None
    try:
        sub = element_info(child.type_code)
    except KeyError:
        raise _error(f"Type '{child.type_code}' is not known", expr, el.sourceline) from None
    return _read_complex(el, sub, child.type_code, expr), None


def _read_wrapped_resource(el: etree._Element, expr: str) -> dict:
    if el.attrib:
        raise _error("A resource container takes no attributes", expr, el.sourceline)
    _check_no_text(el, expr)
    inner = list(el)
    if len(inner) != 1:
        raise _error(f"Expected exactly one resource, found {len(inner)} elements", expr, el.sourceline)
    return _read_resource(inner[0], expr)


def _read_primitive(el: etree._Element, child: JsonChild, expr: str) -> tuple[Any, dict | None]:
    extra: dict[str, Any] = {}
    raw = None
    for attr, attr_value in el.attrib.items():
        if attr == "value":
            raw = attr_value
        elif attr == "id":
            if not attr_value:
                raise _error("Attribute 'id' must not be empty", expr, el.sourceline)
            extra["id"] = attr_value
        elif _split(attr)[0] != XSI_NS:
            raise _error(f"Unexpected attribute '{attr}'", expr, el.sourceline)
    _check_no_text(el, expr)
    extensions = []
    for index, ext_el in enumerate(el):
        if ext_el.tag != _F + "extension":
            raise _error(f"Unknown element '{_split(ext_el.tag)[1]}'", expr, ext_el.sourceline)
        extensions.append(
            _read_complex(ext_el, element_info("Extension"), "Extension", f"{expr}.extension[{index}]")
        )
    if extensions:
        extra["extension"] = extensions
    value = None if raw is None else _convert(raw, child, expr, el.sourceline)
    if value is None and not extra:
        raise _error("Element has no value attribute or extensions", expr, el.sourceline)
    return value, extra or None


def _convert(raw: str, child: JsonChild, expr: str, line: int | None) -> Any:
    kind = child.json_type
    if raw == "":
        raise _error("The value attribute must not be empty", expr, line)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise _error(f"Invalid boolean {raw!r}: expected 'true' or 'false'", expr, line)
        return raw == "true"
    if kind == "integer":
        if not _INTEGER.fullmatch(raw):
            raise _error(f"Invalid {child.type_code} {raw!r}: expected a whole number", expr, line)
        # int() refuses more than 4300 digits; any number that long is out of range anyway.
        number = int(raw) if len(raw) <= 20 else _INT32[1] + 1
        low = _INT_FLOOR.get(child.type_code, _INT32[0])
        if not low <= number <= _INT32[1]:
            raise _error(f"{child.type_code} {raw!r} is out of range", expr, line)
        return number
    if kind == "decimal":
        if not _DECIMAL.fullmatch(raw):
            raise _error(f"Invalid decimal {raw!r}", expr, line)
        try:
            return Decimal(raw)
        except InvalidOperation:
            # An exponent beyond Decimal's limits (1e9999999999999999999): InvalidOperation answered 500.
            raise _error(f"decimal {raw[:40]!r} is out of range", expr, line) from None
    return raw


def _read_xhtml(el: etree._Element) -> str:
    # Rebuilt under a lone default XHTML namespace so FHIR/xsi declarations in scope do not leak in.
    copy = etree.Element(el.tag, dict(el.attrib), nsmap={None: XHTML_NS})
    _copy_xhtml(el, copy)
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding="unicode", with_tail=False)


def _copy_xhtml(source: etree._Element, target: etree._Element) -> None:
    target.text = source.text
    for child in source:
        if not isinstance(child.tag, str):
            continue
        new = etree.SubElement(target, child.tag, dict(child.attrib))
        _copy_xhtml(child, new)
        new.tail = child.tail


# --------------------------------------------------------------------------- dict -> XML


def serialise_xml(resource: dict, *, pretty: bool = False) -> bytes:
    """Write a resource in FHIR JSON form as FHIR XML (UTF-8, with XML declaration); `pretty` indents."""
    try:
        root = _write_resource(resource, None, "")
        return _XML_DECLARATION + etree.tostring(
            root, encoding="UTF-8", xml_declaration=False, pretty_print=pretty
        )
    except RecursionError:
        raise _error("Resource is nested too deeply") from None


def _write_resource(resource: Any, parent: etree._Element | None, expr: str) -> etree._Element:
    if not isinstance(resource, dict):
        raise _error("Expected a resource object", expr or None)
    name = resource.get("resourceType")
    if not isinstance(name, str) or name not in resource_types():
        raise _error(f"Unknown resource type {name!r}", expr or None)
    if parent is None:
        el = etree.Element(_F + name, nsmap={None: FHIR_NS})
    else:
        el = etree.SubElement(parent, _F + name)
    expr = expr or name
    _write_object(el, resource, element_info(name), name, expr, allowed={"resourceType"})
    return el


def _write_object(
    el: etree._Element, obj: Any, info: TypeInfo, path: str, expr: str, allowed: frozenset | set = frozenset()
) -> None:
    if not isinstance(obj, dict):
        raise _error(f"Expected an object, found {type(obj).__name__}", expr)
    used = set(allowed)
    for child in info.json_children(path):
        name = child.json_name
        value, extra = obj.get(name), obj.get("_" + name)
        if value is None and extra is None:
            continue
        used.add(name)
        child_expr = f"{expr}.{name}"
        if extra is not None:
            # Only FHIR primitives carry a `_name` sibling (id and extensions of the value).
            if child.json_type is None or child.element.xml_attr or child.element.xhtml:
                raise _error(f"Unknown property '_{name}'", expr)
            used.add("_" + name)
        if child.element.xml_attr:
            _set(el, name, _format(value, child, child_expr), child_expr)
        elif child.element.xhtml:
            el.append(_parse_xhtml(value, child_expr))
        elif child.json_type is not None:
            _write_primitives(el, child, value, extra, child_expr)
        else:
            for index, item in _items(value, child, child_expr):
                item_expr = f"{child_expr}[{index}]" if child.element.is_list else child_expr
                _write_complex(etree.SubElement(el, _F + name), item, info, child, item_expr)
    unknown = sorted(set(obj) - used)
    if unknown:
        raise _error(f"Unknown property '{unknown[0]}'", expr)


def _write_complex(el: etree._Element, item: Any, info: TypeInfo, child: JsonChild, expr: str) -> None:
    if child.type_code == "Resource":
        _write_resource(item, el, expr)
    elif child.element.children_path:
        _write_object(el, item, info, child.element.children_path, expr)
    else:
        _write_object(el, item, element_info(child.type_code), child.type_code, expr)
    if not len(el) and not el.attrib:
        raise _error("Element has no content", expr)


def _items(value: Any, child: JsonChild, expr: str) -> list[tuple[int, Any]]:
    if child.element.is_list:
        if not isinstance(value, list):
            raise _error("Expected an array", expr)
        return list(enumerate(value))
    if isinstance(value, list):
        raise _error("Expected a single value, found an array", expr)
    return [(0, value)]


def _write_primitives(el: etree._Element, child: JsonChild, value: Any, extra: Any, expr: str) -> None:
    if child.element.is_list:
        values = value if value is not None else [None] * len(extra if isinstance(extra, list) else ())
        extras = extra if extra is not None else [None] * len(values if isinstance(values, list) else ())
        if not isinstance(values, list) or not isinstance(extras, list) or len(values) != len(extras):
            raise _error(
                f"'{child.json_name}' and '_{child.json_name}' must be arrays of the same length", expr
            )
        pairs = [(f"{expr}[{i}]", v, x) for i, (v, x) in enumerate(zip(values, extras, strict=True))]
    else:
        pairs = [(expr, value, extra)]
    for item_expr, item, item_extra in pairs:
        if item is None and item_extra is None:
            raise _error("A null needs a matching value or extension", item_expr)
        sub = etree.SubElement(el, _F + child.json_name)
        if item_extra is not None:
            _write_primitive_extra(sub, item_extra, item_expr)
        if item is not None:
            _set(sub, "value", _format(item, child, item_expr), item_expr)


def _write_primitive_extra(el: etree._Element, extra: Any, expr: str) -> None:
    if not isinstance(extra, dict) or set(extra) - {"id", "extension"}:
        raise _error("A primitive's '_' object may only hold 'id' and 'extension'", expr)
    if extra.get("id") is not None:
        _set(el, "id", _checked_text(extra["id"], expr), expr)
    extensions = extra.get("extension") or []
    if not isinstance(extensions, list):
        raise _error("'extension' must be an array", expr)
    ext_info = element_info("Extension")
    for index, ext in enumerate(extensions):
        sub = etree.SubElement(el, _F + "extension")
        _write_object(sub, ext, ext_info, "Extension", f"{expr}.extension[{index}]")


def _set(el: etree._Element, name: str, value: str, expr: str) -> None:
    try:
        el.set(name, value)
    except ValueError:
        raise _error("Value holds characters that XML cannot carry", expr) from None


def _checked_text(value: Any, expr: str) -> str:
    if not isinstance(value, str):
        raise _error(f"Expected a string, found {type(value).__name__}", expr)
    return value


def _format(value: Any, child: JsonChild, expr: str) -> str:
    kind = child.json_type or "string"
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == "decimal" and not isinstance(value, bool) and isinstance(value, Decimal | int | float):
        return _format_decimal(value, expr)
    if kind == "string" and isinstance(value, str):
        if not value:
            raise _error("Strings must not be empty", expr)
        return value
    raise _error(f"Expected a {child.type_code} ({kind}), found {type(value).__name__}", expr)


_MAX_FIXED_ZEROS = 100


def _format_decimal(value: Decimal | int | float, expr: str) -> str:
    try:
        number = value if isinstance(value, Decimal) else Decimal(repr(value))
    except InvalidOperation:
        raise _error(f"Invalid decimal {value!r}", expr) from None
    if not number.is_finite():
        raise _error(f"Invalid decimal {value!r}", expr)
    exponent = number.as_tuple().exponent
    # str() switches to E-notation for small numbers ("1E-7"); fixed-point keeps every digit. Not for
    # tiny ones: 1e-999999999 is a valid decimal, and fixed-point would write a billion zeros.
    fixed = isinstance(exponent, int) and exponent < 0 and number.adjusted() >= -_MAX_FIXED_ZEROS
    return format(number, "f") if fixed else str(number)


def _parse_xhtml(value: Any, expr: str) -> etree._Element:
    if not isinstance(value, str) or not value:
        raise _error("Narrative div must be a non-empty XHTML string", expr)
    try:
        div = parse_document(value.encode("utf-8"))
    except InvalidSyntaxError as exc:
        raise _error(f"Narrative div: {exc.message}", expr) from None
    if div.tag != _X + "div":
        raise _error("Narrative must be a <div> in the XHTML namespace", expr)
    return div
