"""Tests of the CAR-T FHIR package in profiles/."""
