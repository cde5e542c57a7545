"""Hostile and malformed inputs found by fuzzing the ingest, $validate and token endpoints: each one used
to answer 500 (or jam the audit trail, or store what was meant as a dry run) and now gets a 4xx answer
that names the parameter, field or source line, or a rejected record with its reason.

Every test runs on SQLite and on PostgreSQL (the `client` and `app` fixtures are parametrised over both);
the NUL and over-long cases only ever failed on PostgreSQL, whose text cannot hold a NUL and whose
varchar columns have a length.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from adapter.security.clients import ClientRegistry
from tests.api.helpers import issue_of as _issue
from tests.conftest import bearer_for

FIXTURES = Path(__file__).resolve().parents[2] / "mappings" / "fixtures"
HL7 = "application/hl7-v2"
TOKEN_URL = "http://localhost/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _names(issue: dict, name: str) -> bool:
    return name in issue.get("expression", []) or name in issue.get("diagnostics", "")


def _params(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return {p["name"]: p.get("resource", p.get("valueInteger")) for p in body["parameter"]}


def _rejections(params: dict) -> list[str]:
    return [i["diagnostics"] for i in params["outcome"]["issue"] if i["severity"] == "error"]


def _patients(client) -> int:  # type: ignore[no-untyped-def]
    return client.get("/fhir/Patient?_summary=count").get_json()["total"]


# -- the source's character set -----------------------------------------------------------------------

# A Content-Type charset Python cannot decode with: unknown, a bytes-to-bytes codec (its lookup succeeds),
# the codec that always fails, a NUL.
BAD_CHARSETS = ["klingon", "rot13", "zlib", "undefined", "\x00"]


@pytest.mark.parametrize("charset", BAD_CHARSETS)
@pytest.mark.parametrize(
    ("mapping", "fixture", "media"),
    [
        ("hl7v2-adt", "hl7v2-adt/a01-ins-utf8.hl7", HL7),
        ("csv-tracking", "csv-tracking/tracking-sheet.csv", "text/csv"),
    ],
)
def test_a_charset_that_is_not_a_character_set_is_415(  # type: ignore[no-untyped-def]
    client, mapping: str, fixture: str, media: str, charset: str
) -> None:
    data = (FIXTURES / fixture).read_bytes()
    response = client.post(
        f"/ingest/{mapping}?dry-run=true", data=data, headers={"Content-Type": f"{media}; charset={charset}"}
    )
    assert _names(_issue(response, 415), "charset")


# -- one bad HL7 v2 message among good ones --------------------------------------------------------------


def _with_second_message(changes: dict[bytes, bytes], fixture: str = "hl7v2-adt/a01-ins-utf8.hl7") -> bytes:
    good = (FIXTURES / fixture).read_bytes().rstrip(b"\r\n")
    bad = good
    for old, new in changes.items():
        assert old in bad
        bad = bad.replace(old, new)
    return good + b"\r" + bad + b"\r"


BAD_MESSAGES = [
    # a malformed hex escape in the control id, which names the message in every finding
    ("hl7v2-adt", "hl7v2-adt/a01-ins-utf8.hl7", {b"ADT0001": b"\\Xzz\\"}, "MSH-10"),
    # minutes beyond what a datetime can hold
    ("hl7v2-siu", "hl7v2-siu/appointments.hl7", {b"|||240|min": b"|||99999999999|min"}, "AIS-7"),
    # a start at the end of year 9999 plus four hours
    ("hl7v2-siu", "hl7v2-siu/appointments.hl7", {b"20250407083000": b"99991231235959"}, "AIS-4"),
    # an integer of 5000 digits, which the JSON writer refuses to convert
    (
        "hl7v2-order",
        "hl7v2-order/orders.hl7",
        {b"Yescarta 0,4-2 x 10E8 cellules^HCL-PHARMA|1": b"Yescarta^HCL-PHARMA|" + b"9" * 5000},
        "RXO-2",
    ),
]


@pytest.mark.parametrize(("mapping", "fixture", "changes", "named"), BAD_MESSAGES)
def test_a_bad_message_is_rejected_alone_and_named(  # type: ignore[no-untyped-def]
    client, mapping: str, fixture: str, changes: dict[bytes, bytes], named: str
) -> None:
    data = _with_second_message(changes, fixture)
    params = _params(client.post(f"/ingest/{mapping}?dry-run=true", data=data, headers={"Content-Type": HL7}))
    assert params["rejected"] >= 1 and params["mapped"] >= 1, params
    assert any(named in reason for reason in _rejections(params)), _rejections(params)


def test_an_integer_beyond_32_bits_rejects_its_message_and_the_others_are_stored(client) -> None:  # type: ignore[no-untyped-def]
    data = _with_second_message(
        {b"Yescarta 0,4-2 x 10E8 cellules^HCL-PHARMA|1": b"Yescarta^HCL-PHARMA|" + b"9" * 30},
        "hl7v2-order/orders.hl7",
    )
    params = _params(client.post("/ingest/hl7v2-order", data=data, headers={"Content-Type": HL7}))
    assert any("RXO-2" in reason and "out of range" in reason for reason in _rejections(params))
    assert _patients(client) >= 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_nul_in_an_identifier_the_mapping_looks_up_names_the_element(client, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    # The order's COI is looked up to merge into a stored ServiceRequest: the search refused the NUL and
    # the whole file got 400 naming a search parameter "identifier" the client never sent
    data = (FIXTURES / "hl7v2-order" / "orders.hl7").read_bytes().replace(b"COI-FR-69-000042", b"COI\\X00\\")
    response = client.post(
        "/ingest/hl7v2-order" + ("?dry-run=true" if dry_run else ""), data=data, headers={"Content-Type": HL7}
    )
    if dry_run:
        findings = _rejections(_params(response))
    else:
        assert response.status_code == 422, response.get_data(as_text=True)
        findings = [i["diagnostics"] for i in response.get_json()["issue"] if i["severity"] == "error"]
        assert _patients(client) == 0
    assert any(".identifier[" in f and "control characters" in f for f in findings), findings


# -- the ingest endpoint's parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["dry-run=on", "dry-run=", "dry-run=maybe", "dry-run=true&dry-run=false", "dry-run=%00"]
)
def test_a_dry_run_flag_that_is_not_true_or_false_is_400_and_stores_nothing(client, query: str) -> None:  # type: ignore[no-untyped-def]
    data = (FIXTURES / "hl7v2-adt" / "a01-ins-utf8.hl7").read_bytes()
    response = client.post(f"/ingest/hl7v2-adt?{query}", data=data, headers={"Content-Type": HL7})
    assert _names(_issue(response, 400), "dry-run")
    assert _patients(client) == 0


@pytest.mark.parametrize(("method", "path"), [("POST", "/ingest/hl7v2-adt"), ("GET", "/fhir/Patient")])
def test_a_query_string_of_raw_bytes_that_are_not_utf8_is_400(client, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    # What gunicorn hands on for a request line with unencoded bytes: the WSGI string holds them as latin-1.
    response = client.open(
        path, method=method, data=b"", environ_overrides={"QUERY_STRING": "dry-run=\xff\xfe"}
    )
    assert "query string" in _issue(response, 400)["diagnostics"]


# -- $validate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("parameter", [5, True, 1.5])
@pytest.mark.parametrize("path", ["/fhir/$validate", "/fhir/Patient/$validate"])
def test_validate_parameters_whose_parameter_is_not_an_array_is_400(client, path: str, parameter) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"resourceType": "Parameters", "parameter": parameter})
    response = client.post(path, data=body, headers={"Content-Type": "application/fhir+json"})
    assert _names(_issue(response, 400), "Parameters.parameter")


# -- the token endpoint ---------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: bytes) -> str:
    """An assertion whose claims are raw JSON bytes (escapes the JSON encoder would not write)."""
    return f"{_b64(json.dumps({'alg': 'RS384', 'kid': 'k1'}).encode())}.{_b64(claims)}.c2ln"


def _assertion(key, client_id: str, algorithm: str, **claims: object) -> str:  # type: ignore[no-untyped-def]
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 200, "jti": str(uuid.uuid4())}
    return jwt.encode(body | claims, key, algorithm=algorithm, headers={"kid": "k1"})


def _token(client, assertion: str):  # type: ignore[no-untyped-def]
    return client.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def _oauth_error(response, status: int, error: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == error, body
    return body["error_description"]


def _register(app, client_id: str, public_key, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    to_jwk = RSAAlgorithm.to_jwk if algorithm.startswith("RS") else ECAlgorithm.to_jwk
    jwk = json.loads(to_jwk(public_key)) | {"kid": "k1", "alg": algorithm, "use": "sig"}
    app.extensions["cart_adapter"].auth.register(client_id, "admin", "system/*.rs", jwks={"keys": [jwk]})


def test_an_assertion_signed_with_another_kind_of_key_is_401(app) -> None:  # type: ignore[no-untyped-def]
    ec_key = ec.generate_private_key(ec.SECP384R1())
    _register(app, "ec-portal", ec_key.public_key(), "ES384")
    client = app.test_client()
    # RS384 against the registered P-384 key: PyJWT raised TypeError while preparing the key
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    description = _oauth_error(
        _token(client, _assertion(rsa_key, "ec-portal", "RS384")), 401, "invalid_client"
    )
    assert "RS384" in description
    # ES256 against the registered P-384 key: PyJWT raised InvalidKeyError for the curve
    p256 = ec.generate_private_key(ec.SECP256R1())
    description = _oauth_error(_token(client, _assertion(p256, "ec-portal", "ES256")), 401, "invalid_client")
    assert "ES256" in description
    assert _token(client, _assertion(ec_key, "ec-portal", "ES384")).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        # PostgreSQL refused the NUL in the client lookup
        pytest.param(b'{"iss": "a\\u0000b", "sub": "a\\u0000b"}', id="nul"),
        # a lone surrogate cannot be encoded for either database
        pytest.param(b'{"iss": "\\ud800", "sub": "\\ud800"}', id="lone-surrogate"),
    ],
)
def test_an_assertion_issuer_no_database_can_hold_is_an_unknown_client(app, claims: bytes) -> None:  # type: ignore[no-untyped-def]
    description = _oauth_error(_token(app.test_client(), _unsigned(claims)), 401, "invalid_client")
    assert "unknown" in description


def test_an_assertion_jti_with_a_nul_is_401(app) -> None:  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP384R1())
    _register(app, "lab", key.public_key(), "ES384")
    response = _token(app.test_client(), _assertion(key, "lab", "ES384", jti="a\x00b"))
    assert "jti" in _oauth_error(response, 401, "invalid_client")


def test_assertion_jtis_longer_than_their_column_are_told_apart(app) -> None:  # type: ignore[no-untyped-def]
    # Cut to the 255-character column, two jtis sharing their first 255 characters were one: the second
    # assertion was refused as a replay
    key = ec.generate_private_key(ec.SECP384R1())
    _register(app, "lab", key.public_key(), "ES384")
    client = app.test_client()
    first, second = "j" * 300, "j" * 255 + "k" * 45
    assert _token(client, _assertion(key, "lab", "ES384", jti=first)).status_code == 200
    assert _token(client, _assertion(key, "lab", "ES384", jti=second)).status_code == 200
    replay = _token(client, _assertion(key, "lab", "ES384", jti=first))
    assert "replay" in _oauth_error(replay, 401, "invalid_client")


def test_basic_credentials_with_a_nul_in_the_client_id_are_401(app) -> None:  # type: ignore[no-untyped-def]
    response = app.test_client().post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("sim\x00ple", "secret")
    )
    _oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize("repeated", ["grant_type", "scope"])
def test_a_token_request_parameter_sent_twice_is_invalid_request(app, repeated: str) -> None:  # type: ignore[no-untyped-def]
    _, secret = app.extensions["cart_adapter"].auth.register("simple", "admin", "system/*.rs")
    fields = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    form = "&".join(f"{k}={v}" for k, v in fields.items()) + f"&{repeated}=other"
    response = app.test_client().post(
        TOKEN_URL,
        data=form,
        content_type="application/x-www-form-urlencoded",
        auth=("simple", secret),
    )
    assert repeated in _oauth_error(response, 400, "invalid_request")


def test_token_endpoint_refusals_before_the_grant_are_oauth_errors(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert "grant_type" in _oauth_error(client.post(TOKEN_URL, data={}), 400, "invalid_request")
    _oauth_error(client.get(TOKEN_URL), 405, "invalid_request")
    limit = app.config["MAX_CONTENT_LENGTH"]
    huge = client.post(TOKEN_URL, data=b"a" * (limit + 1), content_type="application/x-www-form-urlencoded")
    _oauth_error(huge, 413, "invalid_request")


# -- client registration ----------------------------------------------------------------------------------

BAD_REGISTRATIONS = [
    # the label and the organisation are varchar(255) columns, and the organisation becomes the access
    # label (varchar(255)) of everything the client writes: PostgreSQL refused them (DataError)
    pytest.param({"client_id": "long-label", "role": "admin", "label": "l" * 300}, "label", id="long-label"),
    pytest.param(
        {"client_id": "long-finess", "role": "hospital", "organization": "6" * 300},
        "organization",
        id="long-finess",
    ),
    pytest.param(
        {"client_id": "long-org", "role": "manufacturer", "organization": "Organization/" + "o" * 300},
        "organization",
        id="long-manufacturer",
    ),
    pytest.param(
        {"client_id": "bad-org", "role": "manufacturer", "organization": "Organization/a b"},
        "organization",
        id="manufacturer-id-no-task-owner-can-have",
    ),
    # PostgreSQL refuses a NUL in text
    pytest.param({"client_id": "nul\x00id", "role": "admin"}, "client_id", id="nul-in-client-id"),
    pytest.param(
        {"client_id": "nul-org", "role": "hospital", "organization": "690781810\x00"},
        "organization",
        id="nul-in-finess",
    ),
    pytest.param({"client_id": "nul-label", "role": "admin", "label": "a\x00b"}, "label", id="nul-in-label"),
]


@pytest.mark.parametrize(("fields", "named"), BAD_REGISTRATIONS)
def test_a_registration_no_database_can_hold_is_refused_and_names_the_field(  # type: ignore[no-untyped-def]
    app, fields: dict, named: str
) -> None:
    auth = app.extensions["cart_adapter"].auth
    extra = {k: v for k, v in fields.items() if k not in ("client_id", "role")}
    with pytest.raises(ValueError, match=named):
        auth.register(fields["client_id"], fields["role"], "system/*.rs", **extra)
    assert auth.registry.get(fields["client_id"]) is None
    # the longest that fits is registered, and its writes are labelled with its organisation
    auth.register("fits", "hospital", "system/*.cruds", organization="6" * 248, label="l" * 255)


def test_clients_add_with_a_label_longer_than_its_column_is_an_error_message(  # type: ignore[no-untyped-def]
    database_url: str, tmp_path: Path, monkeypatch
) -> None:
    from click.testing import CliRunner

    from adapter.cli import main

    monkeypatch.setenv("CART_ADAPTER_DATABASE_URL", database_url)
    monkeypatch.setenv("CART_ADAPTER_INSTANCE_PATH", str(tmp_path))
    args = ["clients", "add", "portal", "--role", "admin", "--scopes", "system/*.rs"]
    result = CliRunner().invoke(main, args + ["--label", "l" * 300])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert "label" in result.output
    result = CliRunner().invoke(main, args + ["--label", "Lab portal"])
    assert result.exit_code == 0, result.output


def test_a_clients_file_with_a_nul_in_a_client_is_refused(tmp_path: Path) -> None:
    from adapter.security.clients import ClientConfigError, load_clients_file

    path = tmp_path / "clients.toml"
    path.write_text(
        '[[client]]\nclient_id = "lab"\nrole = "hospital"\norganization = "690781810\\u0000"\n'
        'scopes = "system/*.rs"\nsecret_hash = "x"\n',
        encoding="utf-8",
    )
    with pytest.raises(ClientConfigError, match="organization"):
        load_clients_file(path)


# -- the audit trail of hostile requests ----------------------------------------------------------------


def _audited(app, client_id: str) -> int:  # type: ignore[no-untyped-def]
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "auditor")
    response = admin.get(f"/fhir/AuditEvent?agent-name={client_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return len(response.get_json().get("entry", []))


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param("/ingest/a%00b", id="nul-in-entity"),
        pytest.param("/ingest/" + "x" * 300, id="entity-longer-than-its-column"),
        pytest.param("/fhir/%00/$validate", id="nul-in-operation"),
        pytest.param("token:" + "c" * 101, id="client-id-longer-than-its-column"),
        pytest.param("token:\udc80", id="lone-surrogate-client-id"),
    ],
)
def test_a_hostile_request_is_audited_and_does_not_block_the_records_after_it(app, hostile: str) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "hostile")
    if hostile.startswith("token:"):
        issuer = json.dumps(hostile[6:]).encode()
        client.post(
            TOKEN_URL,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _unsigned(b'{"iss": %s, "sub": %s}' % (issuer, issuer)),
            },
        )
    else:
        assert client.post(hostile, data=b"x", headers={"Content-Type": HL7}).status_code < 500
    # A record that cannot be written stays at the head of the queue: the next ones are never written.
    after = app.test_client()
    after.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "after-hostile")
    assert after.get("/fhir/Patient").status_code == 200
    assert _audited(app, "after-hostile") == 1


def test_audit_records_with_values_longer_than_their_columns_are_found_by_the_whole_value(app) -> None:  # type: ignore[no-untyped-def]
    # Stored cut to the column, searched whole: the admin never found them
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "hostile")
    mapping = "m" * 300
    assert client.post(f"/ingest/{mapping}", data=b"x", headers={"Content-Type": HL7}).status_code == 404
    issuer = "c" * 150
    claims = json.dumps({"iss": issuer, "sub": issuer}).encode()
    _token(app.test_client(), _unsigned(claims))
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "auditor")
    for query in (f"entity=ingest/{mapping}", f"agent-name={issuer}"):
        response = admin.get(f"/fhir/AuditEvent?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert len(response.get_json().get("entry", [])) == 1, query
    # (like the search index, a search also matches values that differ only beyond the cut)
    assert admin.get("/fhir/AuditEvent?entity=ingest/" + "n" * 300).get_json().get("entry") is None


def test_the_client_cache_stays_bounded_and_skips_ids_no_client_can_have() -> None:
    asked: list[str] = []

    def lookup(client_id: str) -> None:
        asked.append(client_id)

    registry = ClientRegistry({}, lookup, max_cached=8)
    for n in range(50):
        assert registry.get(f"nobody-{n}") is None
    assert len(registry._cache) <= 8
    for impossible in ("", "x" * 101, "a\x00b", "\udc80"):
        assert registry.get(impossible) is None
    assert len(asked) == 50


# -- the `map` command -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--content-type", "application/hl7-v2; charset=rot13"], "charset 'rot13'"),
        (["--out", "{tmp}/missing-folder/bundle.json"], "cannot write"),
    ],
)
def test_map_command_answers_bad_options_with_a_message_not_a_traceback(
    tmp_path: Path, extra: list[str], said: str
) -> None:
    from click.testing import CliRunner

    from adapter.mapping.cli import map_command

    args = ["--mapping", "hl7v2-adt", str(FIXTURES / "hl7v2-adt" / "a01-ins-utf8.hl7")]
    result = CliRunner().invoke(map_command, args + [a.format(tmp=tmp_path) for a in extra])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert said in result.output
