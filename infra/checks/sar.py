"""The Serverless Application Repository metadata of template.yaml, checked
offline as `sam publish` reads it (SAM CLI's own serverlessrepo parser) and
against SAR's documented constraints: the fields publishing needs, their
patterns and lengths, local README and LICENSE files under 5 MB, the version
and license Cargo.toml declares, and the one transform SAR accepts.

Usage: sar.py TEMPLATE CARGO_TOML"""

import os
import re
import sys
import tomllib

from samcli.vendor.serverlessrepo.exceptions import InvalidApplicationMetadataError
from samcli.vendor.serverlessrepo.parser import get_app_metadata, parse_template

# What SAR says of each field (serverless-sam-template-publishing-applications-metadata-properties).
PATTERNS = {
    "name": (r"[a-zA-Z0-9\-]{1,140}", "1-140 of a-z A-Z 0-9 -"),
    "author": (r"[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?", "lower-case letters, digits and single hyphens"),
    "semantic_version": (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", "a semantic version"),
}


def problems(template_path, cargo_path):
    found = []
    with open(template_path) as f:
        template = parse_template(f.read())
    metadata = get_app_metadata(template)
    try:
        # Creating the application needs these; a version needs its semantic version; public needs a license.
        metadata.validate(["author", "description", "name", "semantic_version", "spdx_license_id", "license_url", "readme_url"])
    except InvalidApplicationMetadataError as e:
        found.append(str(e))
    for field, (pattern, what) in PATTERNS.items():
        value = str(getattr(metadata, field) or "")
        if not re.fullmatch(pattern, value) or len(value) > 127 and field == "author":
            found.append(f"{field} {value!r} is not {what}")
    if not 1 <= len(metadata.description or "") <= 256:
        found.append(f"the description is {len(metadata.description or '')} characters (1-256)")
    labels = metadata.labels or []
    if len(labels) > 10 or not all(re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label) for label in labels):
        found.append(f"labels {labels}: at most 10, each 1-127 of a-z A-Z 0-9 + - _ : / @")
    for field in ("license_url", "readme_url"):
        path = os.path.join(os.path.dirname(os.path.abspath(template_path)), getattr(metadata, field) or "")
        # `sam package` uploads a local file and writes its S3 URL in.
        if not os.path.isfile(path) or os.path.getsize(path) > 5 * 1024 * 1024:
            found.append(f"{field}: {path} is not a local file of at most 5 MB")
    with open(cargo_path, "rb") as f:
        package = tomllib.load(f)["package"]
    if metadata.semantic_version != package["version"]:
        found.append(f"SemanticVersion {metadata.semantic_version} is not Cargo.toml's version {package['version']}")
    if metadata.spdx_license_id != package["license"]:
        found.append(f"SpdxLicenseId {metadata.spdx_license_id} is not Cargo.toml's license {package['license']}")
    transforms = template.get("Transform")
    if transforms not in ("AWS::Serverless-2016-10-31", ["AWS::Serverless-2016-10-31"]):
        found.append(f"SAR accepts only the AWS::Serverless-2016-10-31 transform, not {transforms}")
    return found


if __name__ == "__main__":
    found = problems(sys.argv[1], sys.argv[2])
    for problem in found:
        print(f"SAR metadata: {problem}")
    print(f"SAR metadata: {len(found)} problems")
    sys.exit(1 if found else 0)
