"""Tests for FHIR XML <-> JSON-form conversion and for the per-type element tables behind it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree

from adapter.definitions import (
    TypeInfo,
    code_systems,
    element_info,
    primitive_json_types,
    resource_types,
    search_parameters,
    source_info,
    structure_definition_for_type,
    structure_definitions,
    value_sets,
)
from adapter.errors import InvalidSyntaxError
from adapter.fhirio.xml import _new_parser, parse_xml, serialise_xml

INS_OID = "urn:oid:1.2.250.1.213.1.4.8"

PATIENT_INS = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- patient identifié par son INS -->
<Patient xmlns="http://hl7.org/fhir">
  <id value="pat-ins-001"/>
  <meta><lastUpdated value="2024-03-14T09:12:00.000+01:00"/></meta>
  <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthPlace">
    <valueAddress><city value="Besançon"/><postalCode value="25000"/><country value="FR"/></valueAddress>
  </extension>
  <identifier>
    <use value="official"/>
    <type><coding>
      <system value="http://interopsante.org/fhir/CodeSystem/fr-v2-0203"/><code value="INS-NIR"/>
    </coding></type>
    <system value="{INS_OID}"/>
    <value value="285052512345678"/>
  </identifier>
  <active value="true"/>
  <name>
    <use value="official"/>
    <family value="Lefèvre"/>
    <given value="Hélène"/>
    <given id="g2">
      <extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason">
        <valueCode value="masked"/>
      </extension>
    </given>
    <given value="Zoé"/>
  </name>
  <gender value="female"/>
  <birthDate value="1985-05-12">
    <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">
      <valueDateTime value="1985-05-12T08:30:00+02:00"/>
    </extension>
  </birthDate>
  <multipleBirthInteger value="2"/>
</Patient>
""".encode()

OBSERVATION_LYMPHOCYTES = b"""<?xml version="1.0" encoding="UTF-8"?>
<Observation xmlns="http://hl7.org/fhir">
  <id value="obs-lympho-j7"/>
  <status value="final"/>
  <category><coding>
    <system value="http://terminology.hl7.org/CodeSystem/observation-category"/><code value="laboratory"/>
  </coding></category>
  <code>
    <coding><system value="http://loinc.org"/><code value="731-0"/></coding>
    <text value="Lymphocytes (J+7 apr\xc3\xa8s injection CAR-T)"/>
  </code>
  <subject><reference value="Patient/pat-ins-001"/></subject>
  <effectiveDateTime value="2024-03-21T08:00:00+01:00"/>
  <valueQuantity>
    <value value="1.50"/><unit value="G/L"/><system value="http://unitsofmeasure.org"/><code value="10*9/L"/>
  </valueQuantity>
  <referenceRange>
    <low><value value="1.0"/><unit value="G/L"/></low>
    <high><value value="4.00"/><unit value="G/L"/></high>
  </referenceRange>
  <component>
    <code><text value="Cellules CAR-T CD19 circulantes"/></code>
    <valueQuantity><value value="12.0"/><unit value="%"/></valueQuantity>
  </component>
  <component>
    <code><text value="Nombre de copies du transg\xc3\xa8ne"/></code>
    <valueInteger value="-3"/>
  </component>
</Observation>
"""

TASK_APHERESIS = b"""<?xml version="1.0" encoding="UTF-8"?>
<Task xmlns="http://hl7.org/fhir">
  <id value="task-apherese-42"/>
  <status value="in-progress"/>
  <businessStatus><coding>
    <system value="https://cart.example.fr/CodeSystem/statut-fabrication"/>
    <code value="cytapherese-expediee"/>
    <display value="Produit de cytaph\xc3\xa9r\xc3\xa8se exp\xc3\xa9di\xc3\xa9"/>
  </coding></businessStatus>
  <intent value="order"/>
  <priority value="urgent"/>
  <for><reference value="Patient/pat-ins-001"/></for>
  <authoredOn value="2024-02-28T14:05:00+01:00"/>
  <input>
    <type><text value="Num\xc3\xa9ro de lot"/></type>
    <valueString value="LOT-2024-0042"/>
  </input>
  <input>
    <type><text value="Cha\xc3\xaene du froid respect\xc3\xa9e"/></type>
    <valueBoolean value="false"/>
  </input>
  <input>
    <type><text value="Volume (mL)"/></type>
    <valueDecimal value="250.0"/>
  </input>
  <input>
    <type><text value="Poches"/></type>
    <valuePositiveInt value="2"/>
  </input>
  <output>
    <type><text value="Date de r\xc3\xa9ception"/></type>
    <valueDateTime value="2024-03-01"/>
  </output>
</Task>
"""

BUNDLE_TRANSACTION = b"""<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <type value="transaction"/>
  <entry>
    <fullUrl value="urn:uuid:5d0c4a8e-6b3f-4c53-9b0e-7a1f2d3c4b5a"/>
    <resource>
      <Patient>
        <identifier><system value="urn:oid:1.2.250.1.213.1.4.8"/><value value="162072A123456"/></identifier>
        <name><family value="Nguy\xc3\xaan"/><given value="Andr\xc3\xa9"/></name>
      </Patient>
    </resource>
    <request><method value="POST"/><url value="Patient"/></request>
  </entry>
  <entry>
    <fullUrl value="urn:uuid:a1b2c3d4-0000-4000-8000-000000000001"/>
    <resource>
      <MedicationRequest>
        <contained>
          <Medication>
            <id value="kymriah"/>
            <code><text value="tisagenlecleucel"/></code>
          </Medication>
        </contained>
        <status value="active"/>
        <intent value="order"/>
        <medicationReference><reference value="#kymriah"/></medicationReference>
        <subject><reference value="urn:uuid:5d0c4a8e-6b3f-4c53-9b0e-7a1f2d3c4b5a"/></subject>
        <dosageInstruction>
          <doseAndRate>
            <doseQuantity><value value="0.6"/><unit value="10*8 cellules"/></doseQuantity>
          </doseAndRate>
        </dosageInstruction>
      </MedicationRequest>
    </resource>
    <request><method value="POST"/><url value="MedicationRequest"/></request>
  </entry>
</Bundle>
"""

QUESTIONNAIRE_CRS = b"""<?xml version="1.0" encoding="UTF-8"?>
<Questionnaire xmlns="http://hl7.org/fhir">
  <url value="https://cart.example.fr/Questionnaire/suivi-src"/>
  <status value="active"/>
  <item>
    <linkId value="srf"/>
    <text value="Syndrome de rel\xc3\xa2argage cytokinique"/>
    <type value="group"/>
    <item>
      <linkId value="srf.present"/>
      <text value="Pr\xc3\xa9sent ?"/>
      <type value="boolean"/>
      <required value="true"/>
    </item>
    <item>
      <linkId value="srf.details"/>
      <type value="group"/>
      <enableWhen>
        <question value="srf.present"/><operator value="="/><answerBoolean value="true"/>
      </enableWhen>
      <item>
        <linkId value="srf.grade"/>
        <text value="Grade ASTCT"/>
        <type value="choice"/>
        <answerOption><valueInteger value="1"/></answerOption>
        <answerOption><valueInteger value="2"/><initialSelected value="false"/></answerOption>
      </item>
    </item>
  </item>
</Questionnaire>
"""

PATIENT_NARRATIVE = """<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <id value="pat-narratif"/>
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Jeanne <b>Dupré</b>, née le 3 mars 1962 à Nîmes</p></div>
  </text>
  <name><family value="Dupré"/><given value="Jeanne"/></name>
</Patient>
""".encode()

SAMPLES = {
    "patient-ins": PATIENT_INS,
    "observation": OBSERVATION_LYMPHOCYTES,
    "task": TASK_APHERESIS,
    "bundle": BUNDLE_TRANSACTION,
    "questionnaire": QUESTIONNAIRE_CRS,
    "narrative": PATIENT_NARRATIVE,
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_xml_round_trip(name: str) -> None:
    first = parse_xml(SAMPLES[name])
    again = parse_xml(serialise_xml(first))
    assert again == first


def test_patient_values_and_primitive_extensions() -> None:
    patient = parse_xml(PATIENT_INS)
    assert patient["resourceType"] == "Patient"
    assert patient["id"] == "pat-ins-001"
    assert patient["active"] is True
    assert patient["multipleBirthInteger"] == 2 and type(patient["multipleBirthInteger"]) is int
    assert patient["identifier"][0]["system"] == INS_OID
    assert patient["extension"][0]["valueAddress"]["city"] == "Besançon"
    name = patient["name"][0]
    assert name["family"] == "Lefèvre"
    assert isinstance(name["family"], str)
    assert name["given"] == ["Hélène", None, "Zoé"]
    assert name["_given"] == [
        None,
        {
            "id": "g2",
            "extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}
            ],
        },
        None,
    ]
    assert patient["birthDate"] == "1985-05-12"
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "1985-05-12T08:30:00+02:00"
    assert isinstance(patient["identifier"], list) and isinstance(patient["name"], list)
    assert isinstance(patient["meta"], dict)
    assert list(patient)[:3] == ["resourceType", "id", "meta"]


def test_observation_decimals_keep_their_lexical_form() -> None:
    obs = parse_xml(OBSERVATION_LYMPHOCYTES)
    value = obs["valueQuantity"]["value"]
    assert value == Decimal("1.50") and str(value) == "1.50"
    assert str(obs["referenceRange"][0]["high"]["value"]) == "4.00"
    assert str(obs["component"][0]["valueQuantity"]["value"]) == "12.0"
    assert obs["component"][1]["valueInteger"] == -3
    assert obs["code"]["text"] == "Lymphocytes (J+7 après injection CAR-T)"
    xml = serialise_xml(obs)
    assert b'<value value="1.50"/>' in xml
    assert b'<value value="4.00"/>' in xml


def test_task_business_status_and_choice_inputs() -> None:
    task = parse_xml(TASK_APHERESIS)
    assert task["businessStatus"]["coding"][0]["code"] == "cytapherese-expediee"
    inputs = task["input"]
    assert inputs[0]["valueString"] == "LOT-2024-0042"
    assert inputs[1]["valueBoolean"] is False
    assert inputs[2]["valueDecimal"] == Decimal("250.0") and str(inputs[2]["valueDecimal"]) == "250.0"
    assert inputs[3]["valuePositiveInt"] == 2 and type(inputs[3]["valuePositiveInt"]) is int
    assert task["output"][0]["valueDateTime"] == "2024-03-01"
    assert isinstance(task["for"], dict)


def test_bundle_entries_and_contained_resources() -> None:
    bundle = parse_xml(BUNDLE_TRANSACTION)
    assert bundle["type"] == "transaction"
    assert len(bundle["entry"]) == 2
    patient = bundle["entry"][0]["resource"]
    assert patient["resourceType"] == "Patient"
    assert patient["name"][0]["given"] == ["André"]
    request = bundle["entry"][1]["resource"]
    assert request["resourceType"] == "MedicationRequest"
    assert request["contained"] == [
        {"resourceType": "Medication", "id": "kymriah", "code": {"text": "tisagenlecleucel"}}
    ]
    dose = request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]
    assert dose == Decimal("0.6")
    assert bundle["entry"][1]["request"] == {"method": "POST", "url": "MedicationRequest"}


def test_questionnaire_nested_items_follow_content_reference() -> None:
    questionnaire = parse_xml(QUESTIONNAIRE_CRS)
    group = questionnaire["item"][0]
    assert group["item"][0]["required"] is True
    details = group["item"][1]
    assert details["enableWhen"][0]["answerBoolean"] is True
    grade = details["item"][0]
    assert grade["linkId"] == "srf.grade"
    assert [o["valueInteger"] for o in grade["answerOption"]] == [1, 2]
    assert grade["answerOption"][1]["initialSelected"] is False


def test_narrative_div_is_an_xhtml_string() -> None:
    patient = parse_xml(PATIENT_NARRATIVE)
    assert patient["text"]["div"] == (
        '<div xmlns="http://www.w3.org/1999/xhtml">'
        "<p>Jeanne <b>Dupré</b>, née le 3 mars 1962 à Nîmes</p></div>"
    )
    xml = serialise_xml(patient)
    assert '<div xmlns="http://www.w3.org/1999/xhtml"><p>Jeanne <b>Dupré</b>'.encode() in xml


def test_narrative_with_prefixed_xhtml_gets_a_default_namespace() -> None:
    doc = b"""<f:Patient xmlns:f="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml">
      <f:text><f:status value="generated"/><h:div><h:p>Bonjour</h:p></h:div></f:text></f:Patient>"""
    assert parse_xml(doc)["text"]["div"] == '<div xmlns="http://www.w3.org/1999/xhtml"><p>Bonjour</p></div>'


PARAMETERS_DICT = {
    "resourceType": "Parameters",
    "parameter": [
        {"name": "dose", "valueDecimal": Decimal("0.000000125")},
        {"name": "count", "valueUnsignedInt": 0},
        {"name": "urgent", "valueBoolean": True},
        {
            "name": "patient",
            "resource": {
                "resourceType": "Patient",
                "id": "p-42",
                "name": [{"given": ["Émile", "Aimé"], "_given": [{"id": "first"}, None]}],
                "deceasedBoolean": False,
            },
        },
        {"name": "sub", "part": [{"name": "note", "valueString": "Début du conditionnement"}]},
    ],
}


def test_dict_round_trip() -> None:
    assert parse_xml(serialise_xml(PARAMETERS_DICT)) == PARAMETERS_DICT


def test_serialiser_uses_definition_order_and_lexical_forms() -> None:
    observation = {
        "valueQuantity": {"unit": "G/L", "value": Decimal("1.50")},
        "component": [{"valueBoolean": True, "code": {"text": "Fièvre"}}],
        "status": "final",
        "code": {"text": "Lymphocytes"},
        "id": "o1",
        "resourceType": "Observation",
    }
    xml = serialise_xml(observation)
    assert xml.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Observation xmlns="http://hl7.org/fhir">'
    )
    root = etree.fromstring(xml)
    assert [etree.QName(child).localname for child in root] == [
        "id",
        "status",
        "code",
        "valueQuantity",
        "component",
    ]
    assert [etree.QName(child).localname for child in root[3]] == ["value", "unit"]
    assert root[3][0].get("value") == "1.50"
    assert root[4][1].get("value") == "true"
    assert parse_xml(xml) == observation


def test_serialiser_writes_extension_url_and_id_as_attributes() -> None:
    patient = {
        "resourceType": "Patient",
        "extension": [{"url": "http://example.org/ext", "id": "e1", "valueInteger": 7}],
    }
    xml = serialise_xml(patient)
    assert b'<extension id="e1" url="http://example.org/ext"><valueInteger value="7"/></extension>' in xml


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        ({"resourceType": "Patient", "nickname": "Jo"}, "nickname"),
        ({"resourceType": "Patient", "active": "yes"}, "Patient.active"),
        ({"resourceType": "Patient", "multipleBirthInteger": True}, "Patient.multipleBirthInteger"),
        ({"resourceType": "Patient", "name": {"family": "X"}}, "array"),
        ({"resourceType": "Patient", "text": {"status": "generated", "div": "<p>x</p>"}}, "div"),
        ({"resourceType": "Unknown"}, "Unknown"),
        ({"resourceType": "Patient", "name": [{"given": ["A"], "_given": [None, None]}]}, "same length"),
    ],
)
def test_serialiser_rejects_malformed_resources(resource: dict, fragment: str) -> None:
    with pytest.raises(InvalidSyntaxError) as info:
        serialise_xml(resource)
    assert fragment in info.value.message


def test_serialiser_refuses_doctype_inside_narrative() -> None:
    div = '<!DOCTYPE div [<!ENTITY x "boom">]><div xmlns="http://www.w3.org/1999/xhtml">&x;</div>'
    with pytest.raises(InvalidSyntaxError, match="DOCTYPE"):
        serialise_xml({"resourceType": "Patient", "text": {"status": "generated", "div": div}})


XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&xxe;"/></name></Patient>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol4;"/></name></Patient>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Patient SYSTEM "http://attacker.invalid/fhir.dtd">
<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>"""


def _patient(body: str) -> bytes:
    return f'<Patient xmlns="http://hl7.org/fhir">{body}</Patient>'.encode()


@pytest.mark.parametrize(
    ("data", "fragment", "expression"),
    [
        (XXE, "DOCTYPE", None),
        (BILLION_LAUGHS, "DOCTYPE", None),
        (EXTERNAL_DTD, "DOCTYPE", None),
        (
            b'<Patient xmlns="http://hl7.org/fhir"><name><family value="Lef\xe8vre"/></name></Patient>',
            "UTF-8",
            None,
        ),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><Patient xmlns="http://hl7.org/fhir"/>', "UTF-8", None),
        (b'<Patient xmlns="http://hl7.org/fhir/r5"><active value="true"/></Patient>', "namespace", None),
        (b"<Patient><active value='true'/></Patient>", "namespace", None),
        (_patient('<name><nickname value="Lulu"/></name>'), "Unknown element 'nickname'", "Patient.name[0]"),
        (_patient('<active value="yes"/>'), "Invalid boolean 'yes'", "Patient.active"),
        (_patient('<multipleBirthInteger value="1.5"/>'), "whole number", "Patient.multipleBirthInteger"),
        (_patient('<gender value="female"/><gender value="male"/>'), "only once", "Patient.gender"),
        (_patient('<name><given value="A"/><given value=""/></name>'), "empty", "Patient.name[0].given[1]"),
        (_patient('<deceasedBoolean value="false"/><deceasedDateTime value="2020"/>'), "only once", None),
        (_patient("<active value='true'>oui</active>"), "text", "Patient.active"),
        (_patient("<name/>"), "no attributes or children", "Patient.name[0]"),
        (_patient("<active value='true'/"), "not well-formed", None),
        (b"", "not well-formed", None),
        (b'<Patiente xmlns="http://hl7.org/fhir"/>', "Unknown resource type 'Patiente'", None),
        (b'<HumanName xmlns="http://hl7.org/fhir"/>', "Unknown resource type", None),
        (
            _patient('<link><other><reference value="Patient/1"/></other><type value="seealso"/></link><x/>'),
            "'x'",
            None,
        ),
    ],
)
def test_parse_errors(data: bytes, fragment: str, expression: str | None) -> None:
    with pytest.raises(InvalidSyntaxError) as info:
        parse_xml(data)
    assert fragment in info.value.message
    assert info.value.status == 400
    if expression is not None:
        assert info.value.issues[0].expression == (expression,)


def test_bad_value_deep_in_nested_items_is_located() -> None:
    bad = QUESTIONNAIRE_CRS.replace(b'<required value="true"/>', b'<required value="oui"/>')
    with pytest.raises(InvalidSyntaxError) as info:
        parse_xml(bad)
    assert info.value.issues[0].expression == ("Questionnaire.item[0].item[0].required",)
    assert "line 13" in info.value.message


def test_parser_itself_does_not_expand_entities() -> None:
    # Defence in depth: even without the DOCTYPE pre-scan, the parser must not read local files.
    doc = b'<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>'
    try:
        root = etree.fromstring(doc, _new_parser())
    except etree.XMLSyntaxError:
        return
    assert "root:" not in etree.tostring(root, encoding="unicode")


def test_truncated_documents_only_raise_invalid_syntax() -> None:
    for sample in SAMPLES.values():
        for end in range(0, len(sample) - 12, 37):
            try:
                parse_xml(sample[:end])
            except InvalidSyntaxError:
                continue


def test_every_resource_structure_definition_gives_type_info() -> None:
    for sd in structure_definitions().values():
        if sd["kind"] in ("resource", "complex-type", "primitive-type"):
            info = TypeInfo(sd)
            assert info.kind == sd["kind"]
    for name in resource_types():
        info = element_info(name)
        assert info.children()[0].name == "id"
        assert info.child(name, "id") is not None


def test_type_info_lookups() -> None:
    task = element_info("Task")
    value = task.child("Task.input", "valueQuantity")
    assert value is not None and value.type_code == "Quantity" and value.json_type is None
    assert task.child("Task.input", "valueUnsignedInt").json_type == "integer"
    assert task.element("Task.input").is_list and not task.element("Task.input.value[x]").is_list
    questionnaire = element_info("Questionnaire")
    nested = questionnaire.element("Questionnaire.item.item")
    assert nested.content_reference == "Questionnaire.item"
    assert questionnaire.children("Questionnaire.item.item") == questionnaire.children("Questionnaire.item")
    assert questionnaire.element("Questionnaire.item.item.linkId").path == "Questionnaire.item.linkId"
    patient = element_info("Patient")
    assert patient.element("Patient.id").json_names == {"id": "string"}
    assert not patient.element("Patient.id").xml_attr
    assert element_info("Extension").element("Extension.url").xml_attr
    assert element_info("HumanName").element("HumanName.id").xml_attr
    assert element_info("Narrative").element("Narrative.div").xhtml
    assert dict(primitive_json_types()) | {"positiveInt": "integer"} == dict(primitive_json_types())
    assert primitive_json_types()["decimal"] == "decimal" and primitive_json_types()["date"] == "string"
    assert element_info("positiveInt").regex == "[1-9][0-9]*"


def test_errors_inside_bundle_entries_name_the_entry() -> None:
    bad = BUNDLE_TRANSACTION.replace(
        b'<intent value="order"/>', b'<intent value="order"/><intent value="plan"/>'
    )
    with pytest.raises(InvalidSyntaxError) as info:
        parse_xml(bad)
    assert info.value.issues[0].expression == ("Bundle.entry[1].resource.intent",)


def test_too_deep_nesting_is_a_syntax_error() -> None:
    depth = 300
    items = '<item><linkId value="a"/><type value="group"/>' * depth + "</item>" * depth
    doc = f'<Questionnaire xmlns="http://hl7.org/fhir"><status value="active"/>{items}</Questionnaire>'
    with pytest.raises(InvalidSyntaxError):
        parse_xml(doc.encode())
    nested: dict = {"linkId": "a", "type": "group"}
    for _ in range(1500):
        nested = {"linkId": "a", "type": "group", "item": [nested]}
    with pytest.raises(InvalidSyntaxError):
        serialise_xml({"resourceType": "Questionnaire", "status": "active", "item": [nested]})


def test_underscore_sibling_only_allowed_on_primitives() -> None:
    with pytest.raises(InvalidSyntaxError, match="_name"):
        serialise_xml({"resourceType": "Patient", "name": [{"family": "Roux"}], "_name": [{"id": "x"}]})


def test_shipped_definitions_are_compact_and_traceable() -> None:
    source = source_info()
    assert source["package"] == "hl7.fhir.r4.core" and source["version"] == "4.0.1"
    assert source["licence"] == "CC0-1.0"
    assert source["counts"]["StructureDefinition"] == len(structure_definitions())
    assert source["counts"]["SearchParameter"] == len(search_parameters())
    assert source["counts"]["ValueSet"] == len(value_sets())
    assert source["counts"]["CodeSystem"] == len(code_systems())
    patient = structure_definition_for_type("Patient")
    assert patient["url"] == "http://hl7.org/fhir/StructureDefinition/Patient"
    for element in patient["snapshot"]["element"]:
        assert not {"definition", "comment", "requirements", "alias", "mapping"} & set(element)
    birth = next(e for e in patient["snapshot"]["element"] if e["path"] == "Patient.birthDate")
    assert birth["type"] == [{"code": "date"}] and birth["max"] == "1"
    assert any(sp["code"] == "birthdate" and "Patient" in sp["base"] for sp in search_parameters())
    gender = code_systems()["http://hl7.org/fhir/administrative-gender"]
    assert [c["code"] for c in gender["concept"]] == ["male", "female", "other", "unknown"]
