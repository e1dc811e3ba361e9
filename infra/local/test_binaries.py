"""The test binaries of a `cargo test --no-run --message-format=json…` build, read
from stdin: one line each, `name<TAB>package directory<TAB>executable`, sorted by
name, for scripts/test to run directly (from the package's directory, as cargo
test does). Compiler messages go to stderr as cargo renders them. Fails unless
exactly the expected tests were built (argv: their names)."""

import json
import os
import sys

built = []
for message in map(json.loads, sys.stdin):
    if message.get("reason") == "compiler-message":
        print(message["message"]["rendered"], file=sys.stderr, end="")
    elif message.get("executable") and message["profile"]["test"]:
        directory = os.path.dirname(message["manifest_path"])
        built.append((message["target"]["name"], directory, message["executable"]))
built.sort()
names = [name for name, _, _ in built]
if names != sorted(sys.argv[1:]):
    sys.exit(f"expected the tests {sorted(sys.argv[1:])} to be built, got {names}")
for line in built:
    print(*line, sep="\t")
