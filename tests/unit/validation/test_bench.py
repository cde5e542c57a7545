"""The validation benchmark's workload: realistic resources that validate cleanly and parse as models."""

from __future__ import annotations

from adapter.validation.validator import Validator
from bench.validation import sample_resources, throughput

from .helpers import errors


def test_bench_resources_validate_without_errors(core_validator: Validator) -> None:
    resources = sample_resources()
    assert len({r["resourceType"] for r in resources}) >= 12
    for resource in resources:
        assert errors(core_validator.validate(resource)) == [], resource["resourceType"]


def test_bench_resources_parse_with_fhir_resources() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    for resource in sample_resources():
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_throughput_counts_resources_per_cpu_second(core_validator: Validator) -> None:
    assert throughput(core_validator.validate, sample_resources()[:2], 0.01) > 0
