#!/usr/bin/env python3
"""Reads a JUnit XML file with junitparser, as Python CI tooling does, and prints what it
read as JSON for tests/integration/junitparser.rs to check.

Usage: junit_read.py <junit.xml>

Exit codes: 0 read, 1 junitparser could not read the file, 3 junitparser is missing or
older than 4 (3.x reads testcases without their flakyFailure and rerunFailure). Tested
with 4.0 and 5.0.
"""

import json
import sys

INSTALL = "`python3 -m pip install 'junitparser>=4'`"

try:
    import junitparser
    from junitparser.xunit2 import JUnitXml
except ImportError as e:
    print(f"junitparser is not installed ({e}); install it with {INSTALL}", file=sys.stderr)
    sys.exit(3)


def too_old():
    print(f"junitparser {junitparser.version} is too old; install a newer one with {INSTALL}",
          file=sys.stderr)
    sys.exit(3)


def result(r):
    return {"tag": r._tag, "message": r.message, "type": r.type, "text": r.text}


def case_properties(c):
    if hasattr(c, "properties"):
        return {p.name: p.value for p in c.properties()}
    # junitparser 4 has no TestCase.properties(): read the element itself.
    props = c._elem.find("properties")
    if props is None:
        return {}
    return {p.get("name"): p.get("value") for p in props.findall("property")}


def case(c):
    if not hasattr(c, "flaky_failures"):
        too_old()
    return {
        "name": c.name,
        "classname": c.classname,
        "time": c.time,
        "results": [result(r) for r in c.result],
        "flaky": [result(r) for r in c.flaky_failures()],
        "reruns": [result(r) for r in c.rerun_failures()],
        "properties": case_properties(c),
        "system_out": c.system_out,
        "system_err": c.system_err,
    }


def suite(s):
    return {
        "name": s.name,
        "tests": s.tests,
        "failures": s.failures,
        "errors": s.errors,
        "skipped": s.skipped,
        "properties": {p.name: p.value for p in s.properties()},
        "cases": [case(c) for c in s],
    }


def main():
    try:
        xml = JUnitXml.fromfile(sys.argv[1])
        read = {
            "name": xml.name,
            "tests": xml.tests,
            "failures": xml.failures,
            "errors": xml.errors,
            "skipped": xml.skipped,
            "suites": [suite(s) for s in xml],
        }
    except Exception as e:  # what a CI tool would choke on
        print(f"junitparser could not read {sys.argv[1]}: {type(e).__name__}: {e}",
              file=sys.stderr)
        sys.exit(1)
    json.dump(read, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
