"""Transform template.yaml offline with the SAM translator, so that cfn-lint
can check what CloudFormation will really get (cfn-lint skips its
circular-dependency rule E3004 on SAM resources), check that no IAM
statement of the result grants a "*" resource, that each function's role
can do exactly what the function needs, and that status events reach the
status Lambda through SQS as the README says.

Usage: transformed.py TEMPLATE OUTPUT.json"""

import fnmatch
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


def role_grants(template, role):
    """{(action, resource)} the role's identity policies allow: its inline
    policies and the stack's managed policies it names in ManagedPolicyArns
    (or that name it in Roles); resources as canonical JSON. Also what cannot
    be reasoned about that way (Deny, NotAction, NotResource, a policy from
    outside the stack)."""
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    documents, problems = [], []
    for policy in properties.get("Policies", []):
        documents.append((f"inline {policy['PolicyName']}", policy["PolicyDocument"]))
    attached = set()
    for arn in properties.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and set(arn) == {"Ref"} and resources.get(arn["Ref"], {}).get("Type") == "AWS::IAM::ManagedPolicy":
            attached.add(arn["Ref"])
        else:
            problems.append(f"{role}: a managed policy from outside the stack: {json.dumps(arn)}")
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and {"Ref": role} in resource["Properties"].get("Roles", []):
            attached.add(name)
    for name in sorted(attached):
        documents.append((name, resources[name]["Properties"]["PolicyDocument"]))
    grants = set()
    for where, document in documents:
        for statement in document["Statement"]:
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement or "Condition" in statement:
                problems.append(f"{role}: {where}: a statement this check cannot reason about: {json.dumps(statement)}")
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            grants |= {(action, json.dumps(target, sort_keys=True)) for action in actions for target in targets}
    return grants, problems


def role_problems(template):
    """Each function's role allows exactly what its function calls, on the
    configured state machines (those the status rule listens to) and their
    executions only: the http and scheduled functions claim, start, check that
    a state machine is Standard, describe and stop (the http function also
    redrives for rewinds, reads execution histories, and queries the status index); the status function only
    writes events back, describes, and stops superseded redrives (it starts
    nothing and checks no state machine). Each trusts Lambda only."""
    resources = template["Resources"]
    pattern = resources["StatusEventsRule"]["Properties"]["EventPattern"]["detail"]["stateMachineArn"]
    machines = [arn["Ref"] for arn in pattern]
    executions = [
        {"Fn::Sub": f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:${{{m}.Name}}:*"}
        for m in machines
    ]

    def on(actions, *targets):
        return {(a, json.dumps(t, sort_keys=True)) for a in actions for t in targets}

    def arn(resource):
        return {"Fn::GetAtt": [resource, "Arn"]}

    table = arn("InstancesTable")
    logs = ["logs:CreateLogStream", "logs:PutLogEvents"]
    shared = on(["dynamodb:GetItem", "dynamodb:UpdateItem"], table) | on(
        ["states:DescribeExecution", "states:StopExecution"], *executions
    )
    starts = on(["dynamodb:PutItem", "dynamodb:DeleteItem"], table) | on(
        ["states:StartExecution", "states:DescribeStateMachine"], *({"Ref": m} for m in machines)
    )
    wanted = {
        "HttpFunctionRole": shared
        | starts
        | on(logs, arn("HttpFunctionLogs"))
        | on(["dynamodb:Query"], {"Fn::Sub": "${InstancesTable.Arn}/index/byStatus"})
        | on(["states:RedriveExecution", "states:GetExecutionHistory"], *executions),
        "ScheduledFunctionRole": shared
        | starts
        | on(logs, arn("ScheduledFunctionLogs"))
        | on(["sqs:SendMessage"], arn("DeadLetterQueue")),
        "StatusEventsFunctionRole": shared
        | on(logs, arn("StatusEventsFunctionLogs"))
        | on(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
            arn("StatusEventsQueue"),
        ),
    }
    problems = []
    for role, expected in wanted.items():
        grants, unclear = role_grants(template, role)
        problems += unclear
        for action, target in sorted(expected - grants):
            problems.append(f"{role}: missing {action} on {target}")
        for action, target in sorted(grants - expected):
            problems.append(f"{role}: more than its function needs: {action} on {target}")
        trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        if trust != [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]:
            problems.append(f"{role}: it must trust lambda.amazonaws.com only: {json.dumps(trust)}")
    # Said outright, whatever the table above comes to say.
    status, _ = role_grants(template, "StatusEventsFunctionRole")
    for action in ("states:DescribeStateMachine", "states:StartExecution"):
        if any(fnmatch.fnmatchcase(action.lower(), granted.lower()) for granted, _ in status):
            problems.append(f"StatusEventsFunctionRole: the status function never calls {action}; its role must not allow it")
    functions = {"HttpFunction": "HttpFunctionRole", "ScheduledFunction": "ScheduledFunctionRole", "StatusEventsFunction": "StatusEventsFunctionRole"}
    for function, role in functions.items():
        if resources[function]["Properties"].get("Role") != arn(role):
            problems.append(f"{function}: its role must be {role}")
    return problems


def status_queue_problems(template):
    """What would make status events fail silently: the status Lambda must read
    them from an SQS queue that reports failed records one by one, keeps them
    for days, hides a record longer than the function may run, and moves one
    that keeps failing to a dead-letter queue that outlives it."""
    resources = template["Resources"]
    problems = []
    mappings = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"].get("FunctionName") == {"Ref": "StatusEventsFunction"}
    ]
    if len(mappings) != 1 or mappings[0].get("EventSourceArn") != {"Fn::GetAtt": ["StatusEventsQueue", "Arn"]}:
        return ["the status function must have exactly one event source: StatusEventsQueue"]
    if mappings[0].get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append("the status queue mapping must report failed records (ReportBatchItemFailures)")
    queue = resources["StatusEventsQueue"]["Properties"]
    dead = resources["StatusEventsDeadLetterQueue"]["Properties"]
    max_timeout = int(template["Parameters"]["FunctionTimeoutSeconds"]["MaxValue"])
    if int(queue["VisibilityTimeout"]) < 6 * max_timeout:
        problems.append(f"VisibilityTimeout {queue['VisibilityTimeout']} < 6 × the largest function timeout {max_timeout}")
    if int(queue["MessageRetentionPeriod"]) < 4 * 86400:
        problems.append("the status queue must keep events at least 4 days")
    redrive = queue.get("RedrivePolicy", {})
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": ["StatusEventsDeadLetterQueue", "Arn"]}:
        problems.append("the status queue must dead-letter to StatusEventsDeadLetterQueue")
    if int(redrive.get("maxReceiveCount", 0)) < 5:
        problems.append("maxReceiveCount must be at least 5")
    if int(dead["MessageRetentionPeriod"]) <= int(queue["MessageRetentionPeriod"]):
        problems.append("the dead-letter queue must keep messages longer than the status queue")
    targets = resources["StatusEventsRule"]["Properties"]["Targets"]
    if [t["Arn"] for t in targets] != [{"Fn::GetAtt": ["StatusEventsQueue", "Arn"]}]:
        problems.append("the status rule must target the status queue only")
    elif targets[0].get("DeadLetterConfig", {}).get("Arn") != {"Fn::GetAtt": ["StatusEventsDeadLetterQueue", "Arn"]}:
        problems.append("events the rule cannot deliver must land in StatusEventsDeadLetterQueue (one redrive for all)")
    return problems


def schedule_problems(template):
    """Each schedule must let a second stack deploy (no fixed name) and name
    its occurrence (schedule and scheduled time), so that a duplicate delivery
    starts nothing twice."""
    problems = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Scheduler::Schedule":
            continue
        properties = resource["Properties"]
        if "Name" in properties:
            problems.append(f"{name}: a fixed schedule name keeps a second stack from deploying (OmitName: true)")
        scheduled = json.loads(properties["Target"].get("Input", "{}"))
        for field, placeholder in (("scheduleArn", "<aws.scheduler.schedule-arn>"), ("scheduledTime", "<aws.scheduler.scheduled-time>")):
            if scheduled.get(field) != placeholder:
                problems.append(f"{name}: its input lacks \"{field}\": \"{placeholder}\"")
    return problems


def auth_and_logging_problems(template):
    """Read-only callers cannot write (JWT scopes per route), and no function
    may log below INFO (the runtime logs raw events, keys and tokens at TRACE)."""
    problems = []
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::ApiGatewayV2::Route":
            method = properties["RouteKey"].split(" ", 1)[0]
            path = properties["RouteKey"].split(" ", 1)[1]
            reads = method == "GET" or (method == "ANY" and path == "/instances/{instanceId}")
            wanted = "JwtReadScopes" if reads else "JwtWriteScopes"
            if wanted not in json.dumps(properties.get("AuthorizationScopes", {})):
                problems.append(f"{name} ({properties['RouteKey']}): its JWT scopes must be {wanted}")
        if resource["Type"] == "AWS::Lambda::Function":
            level = properties.get("LoggingConfig", {}).get("ApplicationLogLevel")
            if level not in ("INFO", "WARN", "ERROR", "FATAL"):
                problems.append(f"{name}: ApplicationLogLevel {level!r} (must be INFO or above)")
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            # A service may write to a queue only on behalf of this stack's own resources.
            for statement in properties["PolicyDocument"]["Statement"]:
                if "Service" in statement.get("Principal", {}) and "aws:SourceArn" not in json.dumps(statement):
                    problems.append(f"{name}: {statement.get('Sid')} lets a service write without an aws:SourceArn condition")
        if resource["Type"] == "AWS::ApiGatewayV2::Stage":
            log_format = properties.get("AccessLogSettings", {}).get("Format", "")
            for field in ("$context.identity.userArn", "$context.authorizer.claims.sub"):
                if field not in log_format:
                    problems.append(f"{name}: the access log does not name the caller ({field})")
    if "JwtNeedsAudience" not in template.get("Rules", {}):
        problems.append("no rule refuses AuthMode JWT without JwtAudience")
    return problems


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
    problems = status_queue_problems(transformed)
    for problem in problems:
        print(f"status events: {problem}")
    print(f"status events through SQS: {len(problems)} problems")
    schedules = schedule_problems(transformed)
    for problem in schedules:
        print(f"schedules: {problem}")
    print(f"schedules: {len(schedules)} problems")
    problems += schedules
    auth = auth_and_logging_problems(transformed)
    for problem in auth:
        print(f"auth and logging: {problem}")
    print(f"auth and logging: {len(auth)} problems")
    problems += auth
    roles = role_problems(transformed)
    for problem in roles:
        print(f"roles: {problem}")
    print(f"roles: {len(roles)} problems")
    problems += roles
    return 1 if wildcards or problems else 0


if __name__ == "__main__":
    sys.exit(main())
