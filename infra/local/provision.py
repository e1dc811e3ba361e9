"""Provision the local emulator for the demo: the instance table, the
EventWaits queue and the example state machines of infra/state-machines/
(`${EventWaitsQueueUrl}` in a definition becomes the queue's URL, as the
template's DefinitionSubstitutions do), then write the functions'
environment file. Idempotent: run it again and it reuses what exists."""

import argparse
import json
import pathlib

import boto3

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/sfn-singleton-local"
# infra/local/relay.py's default --waits-queue.
EVENT_WAITS_QUEUE = "sfn-singleton-event-waits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="emulator URL, e.g. http://127.0.0.1:5050")
    parser.add_argument("--table", default="sfn-singleton-local")
    parser.add_argument("--env-file", required=True, help="where to write the functions' environment")
    parser.add_argument("--public-base-url", required=True, help="base of the URLs in check-status payloads")
    args = parser.parse_args()

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=args.endpoint)
    sfn = session.client("stepfunctions", endpoint_url=args.endpoint)
    sqs = session.client("sqs", endpoint_url=args.endpoint)
    event_waits = sqs.create_queue(QueueName=EVENT_WAITS_QUEUE)["QueueUrl"]

    if args.table not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=args.table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "listPartition", "AttributeType": "S"},
                {"AttributeName": "createdAt", "AttributeType": "N"},
                {"AttributeName": "sweepShard", "AttributeType": "S"},
                {"AttributeName": "sweepAt", "AttributeType": "N"},
            ],
            # As template.yaml's InstancesTable (src/aws/dynamo/item.rs: BY_STATUS_PROJECTION).
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byStatus",
                    "KeySchema": [
                        {"AttributeName": "listPartition", "KeyType": "HASH"},
                        {"AttributeName": "createdAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {
                        "ProjectionType": "INCLUDE",
                        "NonKeyAttributes": [
                            "instanceId", "functionName", "status", "stateMachineArn", "executionName",
                            "executionArn", "updatedAt", "output", "error", "cause",
                        ],
                    },
                },
                {
                    "IndexName": "bySweep",
                    "KeySchema": [
                        {"AttributeName": "sweepShard", "KeyType": "HASH"},
                        {"AttributeName": "sweepAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=args.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
        )

    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    functions = {}
    for path in sorted((ROOT / "infra" / "state-machines").glob("*.asl.json")):
        name = path.name.removesuffix(".asl.json")
        definition = path.read_text().replace("${EventWaitsQueueUrl}", event_waits)
        json.loads(definition)  # fail here, not in the emulator, on a broken file
        if name in existing:
            sfn.update_state_machine(stateMachineArn=existing[name], definition=definition)
            functions[name] = existing[name]
        else:
            functions[name] = sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)[
                "stateMachineArn"
            ]

    env = {
        "AWS_ENDPOINT_URL": args.endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SINGLETON_TABLE_NAME": args.table,
        "SINGLETON_FUNCTIONS": json.dumps(functions, separators=(",", ":")),
        "SINGLETON_PUBLIC_BASE_URL": args.public_base_url,
        # Short, so that the demo shows self-healing without waiting minutes.
        "SINGLETON_RECONCILE_AFTER_SECONDS": "30",
    }
    # Single quotes: dotenv keeps the JSON as it is.
    pathlib.Path(args.env_file).write_text("".join(f"{k}='{v}'\n" for k, v in env.items()))
    for name, arn in functions.items():
        print(f"  function {name:<12} -> {arn}")


if __name__ == "__main__":
    main()
