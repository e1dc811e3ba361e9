"""Live smoke test of a deployed sfn-singleton stack on real AWS.

Off by default: runs only when SINGLETON_SMOKE_STACK names a deployed stack,
and refuses to run when CI is set. Credentials and region come from the usual
AWS environment (profile, SSO, env vars). Requests are SigV4-signed for the
API's default IAM auth, or carry SINGLETON_SMOKE_BEARER for a JWT-auth stack.

1. 50 concurrent starts of one new instance ID → exactly one 202, 49 × 409,
   and exactly one execution of it in Step Functions;
2. it completes (the Wait20 example: ~20 s) and its status event frees the ID;
3. a start of the same ID → 202, a new execution;
4. clean-up: terminate it, then purge the record;
5. IDs through the real front (API Gateway decodes HTTP API paths): an ID
   with a literal `%` starts exactly that ID, and IDs whose `#`, `?` or `/`
   arrive encoded get 400 and start nothing (no other ID is acted on).

SINGLETON_SMOKE_API_URL and SINGLETON_SMOKE_STATE_MACHINE_ARN replace the
stack's outputs (to try the script against a local serving, unsigned).
"""

import collections
import concurrent.futures
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import botocore.auth
import botocore.awsrequest

STORM = 50
FUNCTION = "Wait20"


def fail(message):
    sys.exit(f"live smoke test FAILED: {message}")


def main():
    if os.environ.get("CI"):
        sys.exit("refusing to run: CI is set (the live smoke test never runs in CI)")
    stack = os.environ.get("SINGLETON_SMOKE_STACK")
    api = os.environ.get("SINGLETON_SMOKE_API_URL")
    if not stack and not api:
        sys.exit("SINGLETON_SMOKE_STACK is not set: name a deployed stack to run the live smoke test")
    session = boto3.Session()
    machine = os.environ.get("SINGLETON_SMOKE_STATE_MACHINE_ARN")
    if stack:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        api, machine = api or outputs["ApiUrl"], machine or outputs["StateMachineArn"]
    api = api.rstrip("/")
    signed = stack is not None and not os.environ.get("SINGLETON_SMOKE_BEARER")
    credentials = session.get_credentials().get_frozen_credentials() if signed else None

    def call(method, path, body=None):
        headers = {"content-type": "application/json"} if body is not None else {}
        if bearer := os.environ.get("SINGLETON_SMOKE_BEARER"):
            headers["authorization"] = f"Bearer {bearer}"
        request = botocore.awsrequest.AWSRequest(method=method, url=api + path, data=body, headers=headers)
        if signed:
            botocore.auth.SigV4Auth(credentials, "execute-api", session.region_name).add_auth(request)
        prepared = request.prepare()
        raw = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method=method)
        try:
            with urllib.request.urlopen(raw, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    sfn = session.client("stepfunctions")

    def executions_of(execution_arn):
        # Every execution of one instance ID shares the name up to its last '-' (prefix and key).
        stem = execution_arn.rsplit(":", 1)[1].rsplit("-", 1)[0] + "-"
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
        return [e for page in pages for e in page["executions"] if e["name"].startswith(stem)]

    instance_id = f"smoke-{uuid.uuid4().hex[:12]}"
    start_path = f"/orchestrators/{FUNCTION}/{instance_id}"
    print(f"api {api}, instance {instance_id}, state machine {machine}")

    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(STORM) as pool:
        answers = list(pool.map(lambda n: call("POST", start_path, json.dumps({"smoke": n}).encode()), range(STORM)))
    codes = collections.Counter(status for status, _ in answers)
    print(f"1. {STORM} concurrent starts in {time.monotonic() - began:.2f} s: {dict(sorted(codes.items()))}")
    if codes != {202: 1, 409: STORM - 1}:
        fail(f"expected one 202 and {STORM - 1} × 409, got {dict(codes)}: {answers[:3]}")
    first = json.loads(next(body for status, body in answers if status == 202))
    executions = executions_of(first["executionArn"])
    print(f"   executions of {instance_id} in Step Functions: {len(executions)}")
    if len(executions) != 1 or executions[0]["executionArn"] != first["executionArn"]:
        fail(f"expected exactly the 202's execution, found {executions}")

    began = time.monotonic()
    while True:
        status, body = call("GET", f"/instances/{instance_id}")
        runtime = json.loads(body).get("runtimeStatus") if status in (200, 202) else None
        if runtime == "Completed":
            break
        if runtime in ("Failed", "Terminated") or time.monotonic() - began > 180:
            fail(f"expected Completed, got {status} {body}")
        time.sleep(2)
    print(f"2. Completed after {time.monotonic() - began:.0f} s of polling")

    status, body = call("POST", start_path, b'{"smoke":"again"}')
    if status != 202:
        fail(f"restart: expected 202, got {status} {body}")
    again = json.loads(body)["executionArn"]
    if again == first["executionArn"]:
        fail("the restart answered the old execution")
    print(f"3. restart: 202, new execution {again.rsplit(':', 1)[1]}")

    status, body = call("POST", f"/instances/{instance_id}/terminate?reason=smoke+test+clean-up")
    purged, _ = call("DELETE", f"/instances/{instance_id}")
    print(f"4. clean-up: terminate {status}, purge {purged}")
    if (status, purged) != (202, 200):
        fail(f"clean-up: terminate {status} {body}, purge {purged}")
    tag = uuid.uuid4().hex[:8]
    literal = f"smoke-{tag}-100%41"
    status, body = call("POST", f"/orchestrators/{FUNCTION}/{urllib.parse.quote(literal, safe='')}", b"{}")
    if status != 202 or json.loads(body).get("id") != literal:
        fail(f"an ID with a literal %: expected 202 naming {literal!r}, got {status} {body}")
    call("POST", f"/instances/{urllib.parse.quote(literal, safe='')}/terminate")
    call("DELETE", f"/instances/{urllib.parse.quote(literal, safe='')}")
    for forbidden in ("%23x", "%3Fx", "%2Fx"):
        victim = f"smoke-{tag}-a"
        status, body = call("POST", f"/orchestrators/{FUNCTION}/{victim}{forbidden}", b"{}")
        if status not in (400, 404):
            fail(f"ID {victim}{forbidden}: expected 400 (or API Gateway's 404), got {status} {body}")
        if call("GET", f"/instances/{victim}")[0] != 404:
            fail(f"ID {victim}{forbidden} acted on {victim}")
    print("5. encoded IDs: a literal % starts exactly that ID; encoded # ? / get 4xx and touch no other ID")
    print("live smoke test passed")


if __name__ == "__main__":
    main()
