"""Relay Step Functions status changes from the local emulator to the status
Lambda, as EventBridge would on AWS, and wait messages from the EventWaits
queue to the event-wait Lambda, as the stack's event source mapping does.

moto runs state machines but emits no EventBridge events. This polls its
executions and, for every new status it sees, invokes the status Lambda
(served by `cargo lambda watch`) with a "Step Functions Execution Status
Change" event in the documented format, inside an SQS batch, as the stack's
rule → queue → event source mapping delivers it on AWS. Like SQS, it
delivers at least once: a record the Lambda reports failed
(`batchItemFailures`), or a failed invocation, is tried again at the next poll.
Wait messages are received from moto's SQS (where the example state
machine's `sqs:sendMessage.waitForTaskToken` task sends them), handed over in
the event source mapping's shape, and deleted unless reported failed."""

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


def sqs_record(message_id, receipt_handle, body, attributes, queue_arn):
    """One record of an SQS event source mapping's batch."""
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_batch(event):
    """One SQS record whose body is the whole event (the status queue's shape)."""
    now = str(int(time.time() * 1000))
    attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": now,
        "SenderId": "local-relay",
        "ApproximateFirstReceiveTimestamp": now,
    }
    queue_arn = f"arn:aws:sqs:{event['region']}:{event['account']}:StatusEventsQueue"
    record = sqs_record(str(uuid.uuid4()), "local-relay", json.dumps(event), attributes, queue_arn)
    return {"Records": [record]}


def invoke(url, batch):
    """Invokes a function with an SQS batch; the message IDs it reported failed."""
    request = urllib.request.Request(url, data=json.dumps(batch).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        failed = answer.headers.get("X-Amz-Function-Error")
        reply = answer.read()
    if failed:
        raise OSError(f"{failed}: {reply[:200]!r}")
    return {f["itemIdentifier"] for f in json.loads(reply or b"{}").get("batchItemFailures", [])}


def relay_waits(sqs, queue_url, invoke_url):
    """One receive from the EventWaits queue, handed to the event-wait Lambda."""
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=5, AttributeNames=["All"]
    ).get("Messages", [])
    if not received:
        return
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[-1]}"
    batch = {
        "Records": [
            sqs_record(m["MessageId"], m["ReceiptHandle"], m["Body"], m.get("Attributes", {}), queue_arn)
            for m in received
        ]
    }
    try:
        failed = invoke(invoke_url, batch)
    except OSError as error:
        print(f"event-wait Lambda unavailable ({error}); SQS delivers the messages again", flush=True)
        return
    for m in received:
        if m["MessageId"] in failed:
            print(f"wait reported failed; SQS delivers it again: {m['MessageId']}", flush=True)
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        print(f"relayed wait  {json.loads(m['Body']).get('eventName', '?')}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="emulator URL")
    parser.add_argument("--invoke-url", required=True, help="the status Lambda's invocation URL")
    parser.add_argument("--waits-invoke-url", help="the event-wait Lambda's invocation URL")
    parser.add_argument("--waits-queue", default="sfn-singleton-event-waits", help="the EventWaits queue's name")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    sfn = session.client("stepfunctions", endpoint_url=args.endpoint)
    sqs = session.client("sqs", endpoint_url=args.endpoint)
    waits_queue = sqs.get_queue_url(QueueName=args.waits_queue)["QueueUrl"] if args.waits_invoke_url else None
    delivered = {}  # execution ARN -> last status delivered
    while True:
        if waits_queue:
            relay_waits(sqs, waits_queue, args.waits_invoke_url)
        for machine in sfn.list_state_machines()["stateMachines"]:
            pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
            for page in pages:
                for summary in page["executions"]:
                    arn, status = summary["executionArn"], summary["status"]
                    if delivered.get(arn) == status:
                        continue
                    execution = sfn.describe_execution(executionArn=arn)
                    try:
                        if invoke(args.invoke_url, sqs_batch(event_for(execution))):
                            raise OSError("the record was reported failed")
                        delivered[arn] = status
                        print(f"relayed {status:<9} {execution['name']}", flush=True)
                    except OSError as error:
                        print(f"status Lambda unavailable ({error}); retrying", flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
