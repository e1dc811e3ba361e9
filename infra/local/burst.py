"""A burst of concurrent starts of one instance ID through the demo's API, as
a new user would send it: every connection opened first, then all requests
at once. Passes when exactly one answer is 202 and every other is 409 (or 503
with Retry-After, when the emulator itself times out), with no connection
error, and the state machine has exactly one execution, the one the 202 named.
Prints the figures."""

import argparse
import collections
import json
import threading
import time
import urllib.parse
from http.client import HTTPConnection

import boto3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", required=True, help="the demo's API base URL")
    parser.add_argument("--endpoint", required=True, help="the emulator's URL")
    parser.add_argument("--function", default="Wait20")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    api = urllib.parse.urlsplit(args.api)
    instance = f"burst-{int(time.time() * 1000)}"
    path = f"{api.path}/orchestrators/{args.function}/{instance}"
    threading.stack_size(256 * 1024)
    ready = threading.Barrier(args.requests + 1)
    answers = [None] * args.requests

    def start(i):
        try:
            connection = HTTPConnection(api.hostname, api.port, timeout=120)
            connection.connect()
        except OSError as error:
            answers[i] = ("connection error", str(error), None, 0.0)
            ready.wait()
            return
        ready.wait()
        began = time.monotonic()
        try:
            connection.request("POST", path, body=b'{"burst": true}', headers={"content-type": "application/json"})
            response = connection.getresponse()
            body = response.read()
            answers[i] = (response.status, body.decode(errors="replace"), response.getheader("Retry-After"), time.monotonic() - began)
        except OSError as error:
            answers[i] = ("connection error", str(error), None, time.monotonic() - began)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(args.requests)]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began

    def parsed(body):
        try:
            return json.loads(body)
        except ValueError:
            return {"unparsed": body[:200]}

    statuses = collections.Counter(a[0] for a in answers)
    accepted = [parsed(a[1]) for a in answers if a[0] == 202]
    problems = []
    if len(accepted) != 1:
        problems.append(f"{len(accepted)} answers were 202, not exactly one")
    for status, body, retry_after, _ in answers:
        if status == 503 and not retry_after:
            problems.append(f"a 503 without Retry-After: {body[:200]}")
        elif status not in (202, 409, 503):
            problems.append(f"answered {status}: {body[:200]}")
    conflicts = [parsed(a[1]) for a in answers if a[0] == 409]
    # Durable's refusal, or a start that found the winner's claim in doubt and said so.
    odd = [c for c in conflicts if f"An instance with ID '{instance}' already exists." not in json.dumps(c) and c.get("error") != "StillStarting"]
    if odd:
        problems.append(f"{len(odd)} 409s that are not Durable's 'already exists', e.g. {odd[0]}")
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    sfn = session.client("stepfunctions", endpoint_url=args.endpoint)
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == args.function)
    executions = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine).build_full_result()["executions"]
    started = [e["executionArn"] for e in executions if e["startDate"].timestamp() >= time.time() - elapsed - 600]
    if len(started) != 1 or (accepted and started != [accepted[0].get("executionArn")]):
        problems.append(f"{len(started)} executions started, not the one the 202 named")
    latencies = sorted(a[3] for a in answers if isinstance(a[0], int))
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
    print(f"{args.requests} concurrent starts of {instance}: answered {dict(sorted(statuses.items(), key=str))} "
          f"in {elapsed:.2f} s (p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms); {len(started)} execution started")
    for problem in problems[:10]:
        print(f"  problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
