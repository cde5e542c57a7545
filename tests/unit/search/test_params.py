"""Search parameters compiled from the R4 SearchParameter expressions."""

from __future__ import annotations

from adapter.search.params import PathSpec, compile_path, params_for


def test_plain_path() -> None:
    assert compile_path("Task.owner", "Task") == PathSpec(("owner",))


def test_where_resolve_keeps_the_target_type() -> None:
    spec = compile_path("Observation.subject.where(resolve() is Patient)", "Observation")
    assert spec == PathSpec(("subject",), None, "Patient")


def test_as_cast_on_choice() -> None:
    assert compile_path("(Observation.effective as dateTime)", "Observation") == PathSpec(
        ("effective",), "dateTime"
    )
    assert compile_path("Condition.onset.as(Period)", "Condition") == PathSpec(("onset",), "Period")


def test_other_types_and_functions_are_not_compiled() -> None:
    assert compile_path("Patient.name", "Practitioner") is None
    assert compile_path("Bundle.entry[0].resource", "Bundle") is None
    assert compile_path("Patient.deceased.exists() and Patient.deceased != false", "Patient") is None
    assert compile_path("Patient.telecom.where(system != 'email')", "Patient") is None


def test_filters_extensions_and_inner_casts_are_compiled() -> None:
    assert compile_path("Patient.telecom.where(system='email')", "Patient") == PathSpec(
        ("telecom",), filters=((0, "system", "email"),)
    )
    by_url = PathSpec(("extension", "value"), filters=((0, "url", "x"),))
    assert compile_path("Patient.extension('x')", "Patient") == by_url
    assert compile_path("Patient.extension('x').value", "Patient") == by_url
    assert compile_path("Patient.extension('x').extension('y')", "Patient") == PathSpec(
        ("extension", "extension", "value"), filters=((0, "url", "x"), (1, "url", "y"))
    )
    assert compile_path("(Observation.value as CodeableConcept).text", "Observation") == PathSpec(
        ("value", "text"), step_casts=((0, "CodeableConcept"),)
    )


def test_task_parameters_needed_for_order_polling() -> None:
    task = params_for("Task")
    assert task["owner"].type == "reference"
    assert task["business-status"].type == "token"
    assert task["focus"].type == "reference"
    assert task["based-on"].type == "reference"


def test_multi_base_parameters_take_the_member_of_each_type() -> None:
    procedure = params_for("Procedure")
    assert procedure["patient"].paths == (PathSpec(("subject",), None, "Patient"),)
    assert params_for("Observation")["date"].type == "date"
