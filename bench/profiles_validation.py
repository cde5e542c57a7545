"""CAR-T profile validation throughput on one core, beside parsing the same resources with fhir.resources.

Run `python -m bench.profiles_validation [--rounds N] [--seconds S]`. The resources are the package's valid
examples (one per profile, some profiles twice) and the pathway transaction Bundle, each validated against
the profiles it claims in meta.profile, with the validator loaded from profiles/package. The same process,
pinned to one CPU, alternates validation and R4B model parsing in slices of CPU time (bench.validation's
method); figures are medians over the rounds, the ratio the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.validation import throughput

TARGET = 2.0  # validation should be at least twice as fast as parsing the same resources (1x at worst)


def car_t_resources(profiles_dir: Path) -> list[dict]:
    """The valid examples of the package and the pathway transaction Bundle, as parsed JSON."""
    examples = profiles_dir / "examples"
    index = json.loads((examples / "index.json").read_text(encoding="utf-8"))
    files = [e["file"] for e in index["examples"] if e["valid"]]
    files += [b["file"] for b in index["bundles"] if b["valid"]]
    return [json.loads((examples / name).read_text(encoding="utf-8")) for name in files]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="measurement rounds (default 15)")
    parser.add_argument("--seconds", type=float, default=0.5, help="CPU seconds per round and contender")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the figures claim

    from fhir.resources.R4B import get_fhir_model_class

    from adapter.profiles import PROFILES_DIR, package_dir
    from adapter.validation.loader import load_definitions
    from adapter.validation.validator import Validator

    resources = car_t_resources(PROFILES_DIR)
    started = time.perf_counter()
    validator = Validator(load_definitions([package_dir()]))
    problems = []
    for resource in resources:
        for issue in validator.validate(resource):
            if issue.severity in ("error", "fatal") or "not known" in issue.diagnostics:
                problems.append((resource["resourceType"], issue.diagnostics))
    cold = time.perf_counter() - started
    if problems:
        for name, message in problems:
            print(f"unexpected issue in the {name} example: {message}")
        return 1
    models = {r["resourceType"]: get_fhir_model_class(r["resourceType"]) for r in resources}

    def parse(resource: dict) -> Any:
        return models[resource["resourceType"]].model_validate(resource)

    for resource in resources:
        parse(resource)
    validate_rates, parse_rates = [], []
    for _ in range(args.rounds):
        validate_rates.append(throughput(validator.validate, resources, args.seconds))
        parse_rates.append(throughput(parse, resources, args.seconds))
    validated = statistics.median(validate_rates)
    parsed = statistics.median(parse_rates)
    ratio = statistics.median(v / p for v, p in zip(validate_rates, parse_rates, strict=True))
    profiles = sorted({p.rsplit("/", 1)[-1] for r in resources for p in r.get("meta", {}).get("profile", [])})
    print(
        f"resources: {len(resources) - 1} CAR-T examples ({len(profiles)} profiles)"
        " + the pathway transaction Bundle"
    )
    print(f"loading the package and first validation: {cold * 1000:.0f} ms")
    print(f"profile validation       : {validated:8.0f} resources/s (median of {args.rounds})")
    print(f"fhir.resources R4B parse : {parsed:8.0f} resources/s (median of {args.rounds})")
    verdict = "meets" if ratio >= TARGET else ("above 1x, below" if ratio >= 1 else "BELOW 1x, misses")
    print(f"ratio validation / parse : {ratio:8.2f} ({verdict} the {TARGET:.0f}x target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
