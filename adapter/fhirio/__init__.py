"""FHIR wire formats: JSON and XML parsing and serialising, OperationOutcome, media types."""
