"""Check that the template's HTTP API routes and openapi.yaml agree: every
operation of the spec has a route (its method, or ANY) in the template, and
every route's path is in the spec. The API is plain ApiGatewayV2 resources
(its auth switch needs intrinsics that SAM's HttpApi does not take), so this
check stands in for importing the spec.

Usage: routes.py TEMPLATE OPENAPI"""

import sys

import yaml
from samtranslator.yaml_helper import yaml_parse

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

template = yaml_parse(open(sys.argv[1]).read())
spec = yaml.safe_load(open(sys.argv[2]))
routes = {}
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::ApiGatewayV2::Route":
        method, path = resource["Properties"]["RouteKey"].split(" ", 1)
        routes.setdefault(path, set()).add(method.upper())
problems = []
for path, operations in spec["paths"].items():
    for method in sorted(METHODS & set(operations)):
        if not routes.get(path, set()) & {"ANY", method.upper()}:
            problems.append(f"{method.upper()} {path} is in the spec, but the template has no route for it")
problems += [f"route {path} is not in the spec" for path in sorted(set(routes) - set(spec["paths"]))]
for problem in problems:
    print(problem)
if problems:
    sys.exit(1)
operations = sum(len(METHODS & set(ops)) for ops in spec["paths"].values())
print(f"template and openapi.yaml agree: {len(routes)} routes, {operations} operations")
