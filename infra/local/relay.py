"""Relay Step Functions status changes from the local emulator to the status
Lambda, as EventBridge would on AWS.

moto runs state machines but emits no EventBridge events. This polls its
executions and, for every new status it sees, invokes the status Lambda
(served by `cargo lambda watch`) with a "Step Functions Execution Status
Change" event in the documented format, inside an SQS batch, as the stack's
rule → queue → event source mapping delivers it on AWS. Like SQS, it
delivers at least once: a record the Lambda reports failed
(`batchItemFailures`), or a failed invocation, is tried again at the next poll."""

import argparse
import json
import time
import urllib.request
import uuid
from datetime import datetime, timezone

import boto3


def millis(value):
    return int(value.timestamp() * 1000) if value else None


def event_for(execution):
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": execution["status"],
        "startDate": millis(execution.get("startDate")),
        "stopDate": millis(execution.get("stopDate")),
        "input": execution.get("input"),
        "inputDetails": {"included": True},
        "output": execution.get("output"),
        "outputDetails": {"included": True} if "output" in execution else None,
        "error": execution.get("error"),
        "cause": execution.get("cause"),
        "redriveCount": execution.get("redriveCount", 0),
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": execution["stateMachineArn"].split(":")[4],
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": execution["stateMachineArn"].split(":")[3],
        "resources": [execution["executionArn"]],
        "detail": detail,
    }


def sqs_batch(event):
    """One SQS record whose body is the whole event (the event source mapping's shape)."""
    now = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "local-relay",
                "body": json.dumps(event),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "SenderId": "local-relay",
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{event['region']}:{event['account']}:StatusEventsQueue",
                "awsRegion": event["region"],
            }
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="emulator URL")
    parser.add_argument("--invoke-url", required=True, help="the status Lambda's invocation URL")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    sfn = session.client("stepfunctions", endpoint_url=args.endpoint)
    delivered = {}  # execution ARN -> last status delivered
    while True:
        for machine in sfn.list_state_machines()["stateMachines"]:
            pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
            for page in pages:
                for summary in page["executions"]:
                    arn, status = summary["executionArn"], summary["status"]
                    if delivered.get(arn) == status:
                        continue
                    execution = sfn.describe_execution(executionArn=arn)
                    body = json.dumps(sqs_batch(event_for(execution))).encode()
                    request = urllib.request.Request(args.invoke_url, data=body, method="POST")
                    try:
                        with urllib.request.urlopen(request, timeout=30) as answer:
                            failed = answer.headers.get("X-Amz-Function-Error")
                            reply = answer.read()
                        if failed:
                            raise OSError(f"{failed}: {reply[:200]!r}")
                        if json.loads(reply or b"{}").get("batchItemFailures"):
                            raise OSError("the record was reported failed")
                        delivered[arn] = status
                        print(f"relayed {status:<9} {execution['name']}", flush=True)
                    except OSError as error:
                        print(f"status Lambda unavailable ({error}); retrying", flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
