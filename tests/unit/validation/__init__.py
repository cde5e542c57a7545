"""Tests of the StructureDefinition-driven validator (issue 4)."""
