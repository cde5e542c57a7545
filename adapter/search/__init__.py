"""FHIR search: which parameters exist, what a resource indexes for them, and how a query string reads."""
