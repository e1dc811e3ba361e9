"""Transform template.yaml offline with the SAM translator, so that cfn-lint
can check what CloudFormation will really get (cfn-lint skips its
circular-dependency rule E3004 on SAM resources), and check that no IAM
statement of the result grants a "*" resource.

Usage: transformed.py TEMPLATE OUTPUT.json"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """Offline: the translator would look managed policy ARNs up in IAM."""

    def load(self):
        return {}


def placeholders(template):
    """Local CodeUri / DefinitionUri values become S3 locations, as `sam package` would make them."""
    function_globals = template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = "s3://placeholder-bucket/code.zip"
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = "s3://placeholder-bucket/code.zip"
        if isinstance(properties.get("DefinitionUri"), str):
            properties["DefinitionUri"] = "s3://placeholder-bucket/definition.json"


def wildcard_resources(template):
    """(resource, statement) pairs whose Resource is "*"."""
    found = []

    def visit(name, node):
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                resources = node.get("Resource", [])
                resources = resources if isinstance(resources, list) else [resources]
                if "*" in resources:
                    found.append((name, node))
            for value in node.values():
                visit(name, value)
        elif isinstance(node, list):
            for value in node:
                visit(name, value)

    for name, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy"):
            visit(name, resource.get("Properties", {}))
    return found


def main() -> int:
    source, output = sys.argv[1], sys.argv[2]
    with open(source) as f:
        template = yaml_parse(f.read())
    placeholders(template)
    transformed = transform(template, {}, NoManagedPolicies())
    with open(output, "w") as f:
        json.dump(transformed, f, indent=1)
    wildcards = wildcard_resources(transformed)
    for name, statement in wildcards:
        print(f'{name}: a statement grants Resource "*": {json.dumps(statement)}')
    print(f"{len(transformed['Resources'])} resources after the SAM transform; {len(wildcards)} wildcard grants")
    return 1 if wildcards else 0


if __name__ == "__main__":
    sys.exit(main())
