"""Transform template.yaml offline with the SAM translator, so that cfn-lint
can check what CloudFormation will really get (cfn-lint skips its
circular-dependency rule E3004 on SAM resources), check that no IAM
statement of the result grants a "*" resource, that each function's role
can do exactly what the function needs, and that status events reach the
status Lambda through SQS as the README says.

Usage: transformed.py TEMPLATE OUTPUT.json"""

import copy
import fnmatch
import json
import re
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


REGION, ACCOUNT = "eu-west-1", "111122223333"
ORDERS = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Orders"
BILLING = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Billing-v2"
EXAMPLE = "<ExampleStateMachine>"
APPROVAL = "<ApprovalStateMachine>"
# The examples (Wait20, and Approval, which waits for an event), deployed together.
EXAMPLES = [EXAMPLE, APPROVAL]
LONG = [f"arn:aws:states:ap-southeast-2:{ACCOUNT}:stateMachine:{'order-fulfilment-and-billing-workflow-' + str(i).zfill(3)}" for i in range(18)]


def size_problems(template):
    """AWS's size limits, a placeholder counted as 64 characters: the rule's
    event pattern (2048), each function's environment (4 KB), each managed
    policy (6144, without whitespace)."""
    measure = lambda value: len(re.sub(r"<[^<>]*>", "x" * 64, json.dumps(value, separators=(",", ":"))))
    resources = template["Resources"]
    problems = []
    if measure(resources["StatusEventsRule"]["Properties"]["EventPattern"]) > 2048:
        problems.append("the status rule's event pattern is over 2048 characters")
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            variables = resource["Properties"]["Environment"]["Variables"]
            if sum(len(k) + measure(v) for k, v in variables.items()) > 4096:
                problems.append(f"{name}: its environment is over 4 KB")
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and measure(resource["Properties"]["PolicyDocument"]) > 6144:
            problems.append(f"{name}: over 6144 characters")
    return problems

# Parameter sets the template is resolved with: (overrides, the guarded state machines).
SCENARIOS = [
    ({}, EXAMPLES),
    ({"StateMachineArns": f"{ORDERS},{BILLING}"}, [ORDERS, BILLING]),
    ({"StateMachineArns": f"{ORDERS},{BILLING}", "DeployExample": "Always"}, EXAMPLES + [ORDERS, BILLING]),
    ({"Tracing": "Active", "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:on-call"}, EXAMPLES),
    ({"StateMachineArns": ",".join(f"{ORDERS}-{i}" for i in range(9)), "DeployExample": "Always"}, EXAMPLES + [f"{ORDERS}-{i}" for i in range(9)]),
    # The documented bound: 18 state machines of 41-character names in a long region (the rule's pattern fills first).
    ({"StateMachineArns": ",".join(LONG)}, LONG),
]


class Placeholders(dict):
    """Every resource's Ref and attributes as "<Logical>" / "<Logical.Attr>": what a
    check compares against, whatever CloudFormation will make of them."""

    def __bool__(self):  # (an empty resolver would be replaced by the default one)
        return True

    def get(self, attribute, default=None):
        return lambda logical_id: f"<{logical_id}>" if attribute == "Ref" else f"<{logical_id}.{attribute}>"


def resolved(template, overrides):
    """The SAM-transformed template as CloudFormation would evaluate it with
    these parameters (conditions, Fn::If / Join / Split / Sub / Ref), in
    REGION / ACCOUNT; resources' names and attributes as placeholders, and
    resources whose condition is false left out."""
    from samcli.lib.intrinsic_resolver.intrinsic_property_resolver import IntrinsicResolver
    from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable

    template = swap(copy.deepcopy(template), {"Ref": "AWS::NoValue"}, NO_VALUE)
    values = {}
    for name, parameter in template["Parameters"].items():
        value = str(overrides.get(name, parameter.get("Default", "")))
        values[name] = value.split(",") if parameter["Type"] == "CommaDelimitedList" else value
        parameter["_value"] = value
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": "singleton", "AWS::URLSuffix": "amazonaws.com"}
    symbols = IntrinsicsSymbolTable(
        template=template, logical_id_translator={**values, **pseudo}, default_type_resolver={"None": {}}, common_attribute_resolver=Placeholders()
    )
    resolver = IntrinsicResolver(template=template, symbol_resolver=symbols)
    holds = {name: resolver.intrinsic_property_resolver({"Fn::If": [name, True, False]}, False) for name in template.get("Conditions", {})}
    template["Resources"] = {name: r for name, r in template["Resources"].items() if holds.get(r.get("Condition"), True)}
    template["Outputs"] = {name: o for name, o in template.get("Outputs", {}).items() if holds.get(o.get("Condition"), True)}
    resolver = IntrinsicResolver(template=template, symbol_resolver=symbols)
    return without_no_value(resolver.resolve_template(ignore_errors=False))


# (The resolver cannot take AWS::NoValue in an Fn::If branch: a stand-in, dropped after.)
NO_VALUE = "<AWS::NoValue>"


def swap(node, old, new):
    if node == old:
        return new
    if isinstance(node, dict):
        return {k: swap(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [swap(v, old, new) for v in node]
    return node


def without_no_value(node):
    if isinstance(node, dict):
        return {k: without_no_value(v) for k, v in node.items() if v != NO_VALUE}
    if isinstance(node, list):
        return [without_no_value(v) for v in node if v != NO_VALUE]
    return node


def as_list(value):
    return [v for v in (value if isinstance(value, list) else [value]) if v is not None]


def role_grants(template, role):
    """{(action, resource)} the role's identity policies allow: its inline
    policies and the stack's managed policies it names in ManagedPolicyArns
    (or that name it in Roles). Also what cannot be reasoned about that way
    (Deny, NotAction, NotResource, a condition, a policy from outside the stack)."""
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    documents, problems = [], []
    for policy in as_list(properties.get("Policies", [])):
        documents.append((f"inline {policy['PolicyName']}", policy["PolicyDocument"]))
    attached = set()
    for arn in as_list(properties.get("ManagedPolicyArns", [])):
        name = arn.strip("<>")
        if resources.get(name, {}).get("Type") == "AWS::IAM::ManagedPolicy":
            attached.add(name)
        else:
            problems.append(f"{role}: a managed policy from outside the stack: {json.dumps(arn)}")
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and f"<{role}>" in as_list(resource["Properties"].get("Roles", [])):
            attached.add(name)
    for name in sorted(attached):
        documents.append((name, resources[name]["Properties"]["PolicyDocument"]))
    grants = set()
    for where, document in documents:
        for statement in as_list(document["Statement"]):
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement or "Condition" in statement:
                problems.append(f"{role}: {where}: a statement this check cannot reason about: {json.dumps(statement)}")
                continue
            grants |= {(action, target) for action in as_list(statement["Action"]) for target in as_list(statement["Resource"])}
    return grants, problems


def executions_of(machine):
    """The execution ARN pattern of a state machine's executions."""
    if machine in EXAMPLES:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine[:-1]}.Name>:*"
    return machine.replace(":stateMachine:", ":execution:", 1) + ":*"


def role_problems(template, machines, tracing):
    """Each function's role allows exactly what its function calls, on the
    guarded state machines and their executions only: the http and scheduled
    functions claim, start, check that a state machine is Standard, describe
    and stop (the http function also redrives for rewinds, reads execution
    histories and queries the status index); both answer waiting tasks
    (raised events, signal-with-start); the status function only writes events back, describes,
    and stops superseded redrives (it starts nothing and checks no state
    machine); the event-wait function reads its queue, reads and updates
    records, describes executions (a redrive from outside), and answers (or
    fails) waiting tasks, nothing else. With
    tracing, each of the first three may also send X-Ray segments (X-Ray takes
    no other resource than "*"). Each trusts Lambda only."""
    resources = template["Resources"]
    executions = [executions_of(m) for m in machines]

    def on(actions, *targets):
        return {(a, t) for a in actions for t in targets}

    table = "<InstancesTable.Arn>"
    logs = ["logs:CreateLogStream", "logs:PutLogEvents"]
    shared = on(["dynamodb:GetItem", "dynamodb:UpdateItem"], table) | on(["states:DescribeExecution", "states:StopExecution"], *executions)
    if tracing:
        shared |= on(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*")
    starts = on(["dynamodb:PutItem", "dynamodb:DeleteItem"], table) | on(["states:StartExecution", "states:DescribeStateMachine"], *machines)
    wanted = {
        "HttpFunctionRole": shared
        | starts
        | on(logs, "<HttpFunctionLogs.Arn>")
        | on(["dynamodb:Query"], "<InstancesTable.Arn>/index/byStatus")
        | on(["states:RedriveExecution", "states:GetExecutionHistory"], *executions)
        | on(["states:SendTaskSuccess"], *machines),
        "ScheduledFunctionRole": shared
        | starts
        | on(logs, "<ScheduledFunctionLogs.Arn>")
        | on(["sqs:SendMessage"], "<DeadLetterQueue.Arn>")
        | on(["states:SendTaskSuccess"], *machines),
        "StatusEventsFunctionRole": shared
        | on(logs, "<StatusEventsFunctionLogs.Arn>")
        | on(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"], "<StatusEventsQueue.Arn>"),
        "EventWaitsFunctionRole": on(logs, "<EventWaitsFunctionLogs.Arn>")
        | on(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"], "<EventWaitsQueue.Arn>")
        | on(["dynamodb:GetItem", "dynamodb:UpdateItem"], table)
        | on(["dynamodb:Query"], "<InstancesTable.Arn>/index/bySweep")
        | on(["states:DescribeExecution"], *executions)
        | on(["states:SendTaskSuccess", "states:SendTaskFailure"], *machines),
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
    functions = {"HttpFunction": "HttpFunctionRole", "ScheduledFunction": "ScheduledFunctionRole", "StatusEventsFunction": "StatusEventsFunctionRole", "EventWaitsFunction": "EventWaitsFunctionRole"}
    for function, role in functions.items():
        if resources[function]["Properties"].get("Role") != f"<{role}.Arn>":
            problems.append(f"{function}: its role must be {role}")
    return problems


def guarded_problems(template, machines):
    """The guarded state machines, derived from the parameters alone: the
    status rule listens to exactly them, and each function is configured with
    exactly them (the examples as Wait20 and Approval, the others by ARN)."""
    problems = []
    resources = template["Resources"]
    pattern = resources["StatusEventsRule"]["Properties"]["EventPattern"]["detail"]["stateMachineArn"]
    if sorted(pattern) != sorted(machines):
        problems.append(f"the status rule filters {pattern}, not {machines}")
    for example in EXAMPLES:
        if (example[1:-1] in resources) != (example in machines):
            problems.append(f"the example {example} is deployed exactly when it is guarded")
    # An alarm takes at most 10 metrics (PutMetricAlarm): the examples and the first 8 listed.
    slotted = [m for m in machines if m in EXAMPLES] + [m for m in machines if m not in EXAMPLES][:8]
    for alarm in ("ExecutionsFailedAlarm", "ExecutionsTimedOutAlarm", "ExecutionThrottledAlarm"):
        metrics = resources[alarm]["Properties"]["Metrics"]
        watched = [m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in metrics if "MetricStat" in m]
        if sorted(watched) != sorted(slotted) or len(watched) > 10:
            problems.append(f"{alarm} watches {watched}, not {slotted}")
    try:
        widgets = json.loads(resources["Dashboard"]["Properties"]["DashboardBody"])["widgets"]
        rows = [row for w in widgets for row in w["properties"].get("metrics", []) if row and row[0] == "AWS/States"]
        for metric in ("ExecutionsStarted", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"):
            shown = [row[3] for row in rows if row[1] == metric and row[2] == "StateMachineArn"]
            if sorted(shown) != sorted(machines):
                problems.append(f"the dashboard shows {metric} of {shown}, not {machines}")
        # CloudWatch takes a search expression of at most 1024 characters.
        long = [m["expression"] for w in widgets for r in w["properties"].get("metrics", []) for m in r if isinstance(m, dict) and len(m.get("expression", "")) > 1024]
        if long:
            problems.append(f"a search expression over 1024 characters: {long[0][:100]}")
        alarms = sorted(a for w in widgets for a in w["properties"].get("alarms", []))
        wanted = sorted(f"<{n}.Arn>" for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm")
        if alarms != wanted:
            problems.append(f"the dashboard's alarm widget lists {alarms}, not every alarm {wanted}")
    except (KeyError, ValueError) as e:
        problems.append(f"the dashboard's body is not a dashboard: {e!r}")
    topic = template["Parameters"]["AlarmTopicArn"]["_value"]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            actions = [resource["Properties"].get(k, []) for k in ("AlarmActions", "OKActions")]
            if actions != ([[topic]] * 2 if topic else [[], []]):
                problems.append(f"{name} notifies {actions}, not the AlarmTopicArn {topic!r}")
    listed = ",".join(m for m in machines if m not in EXAMPLES)
    example = json.dumps({"Wait20": EXAMPLE, "Approval": APPROVAL}, separators=(",", ":")) if EXAMPLE in machines else ""
    for function in ("HttpFunction", "ScheduledFunction", "StatusEventsFunction", "EventWaitsFunction"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        if variables.get("SINGLETON_STATE_MACHINES") != listed or variables.get("SINGLETON_FUNCTIONS") != example:
            problems.append(f"{function}: configured with {variables.get('SINGLETON_STATE_MACHINES')!r} and {variables.get('SINGLETON_FUNCTIONS')!r}")
    return problems


def handler_problems(template):
    """One binary for all four functions: each function's Handler names its
    role (src/lambda.rs reads it from _HANDLER), and all run the same code."""
    resources = template["Resources"]
    roles = {"HttpFunction": "http", "StatusEventsFunction": "status_events", "ScheduledFunction": "scheduled", "EventWaitsFunction": "event_waits"}
    problems = [f"{f}: Handler {resources[f]['Properties'].get('Handler')!r}, not {r!r}" for f, r in roles.items() if resources[f]["Properties"].get("Handler") != r]
    # (Code is a placeholder here, the same for all: what `sam build` builds is in the metadata.)
    for function in roles:
        metadata = resources[function].get("Metadata", {})
        if metadata.get("BuildMethod") != "rust-cargolambda" or metadata.get("BuildProperties", {}).get("Binary") != "bootstrap":
            problems.append(f"{function}: sam build must build the one binary (BuildMethod rust-cargolambda, Binary bootstrap)")
    return problems


def status_queue_problems(template):
    """What would make status events or wait messages fail silently: the
    status Lambda and the event-wait Lambda must each read from an SQS queue
    that reports failed records one by one, keeps them for days, hides a
    record longer than the function may run, and moves one that keeps failing
    to a dead-letter queue that outlives it; the status rule delivers to the
    status queue only."""
    problems = queue_problems(template, "StatusEventsFunction", "StatusEventsQueue", "StatusEventsDeadLetterQueue")
    problems += queue_problems(template, "EventWaitsFunction", "EventWaitsQueue", "EventWaitsDeadLetterQueue")
    targets = template["Resources"]["StatusEventsRule"]["Properties"]["Targets"]
    if [t["Arn"] for t in targets] != [{"Fn::GetAtt": ["StatusEventsQueue", "Arn"]}]:
        problems.append("the status rule must target the status queue only")
    elif targets[0].get("DeadLetterConfig", {}).get("Arn") != {"Fn::GetAtt": ["StatusEventsDeadLetterQueue", "Arn"]}:
        problems.append("events the rule cannot deliver must land in StatusEventsDeadLetterQueue (one redrive for all)")
    return problems


def queue_problems(template, function, queue_name, dead_name):
    """One SQS-fed function's queue, as status_queue_problems says."""
    resources = template["Resources"]
    problems = []
    mappings = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"].get("FunctionName") == {"Ref": function}
    ]
    if len(mappings) != 1 or mappings[0].get("EventSourceArn") != {"Fn::GetAtt": [queue_name, "Arn"]}:
        return [f"{function} must have exactly one event source: {queue_name}"]
    if mappings[0].get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append(f"the {queue_name} mapping must report failed records (ReportBatchItemFailures)")
    queue = resources[queue_name]["Properties"]
    dead = resources[dead_name]["Properties"]
    max_timeout = int(template["Parameters"]["FunctionTimeoutSeconds"]["MaxValue"])
    if int(queue["VisibilityTimeout"]) < 6 * max_timeout:
        problems.append(f"VisibilityTimeout {queue['VisibilityTimeout']} < 6 × the largest function timeout {max_timeout}")
    if int(queue["MessageRetentionPeriod"]) < 4 * 86400:
        problems.append(f"{queue_name} must keep messages at least 4 days")
    redrive = queue.get("RedrivePolicy", {})
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": [dead_name, "Arn"]}:
        problems.append(f"{queue_name} must dead-letter to {dead_name}")
    if int(redrive.get("maxReceiveCount", 0)) < 5:
        problems.append(f"{queue_name}: maxReceiveCount must be at least 5")
    if int(dead["MessageRetentionPeriod"]) <= int(queue["MessageRetentionPeriod"]):
        problems.append(f"{dead_name} must keep messages longer than {queue_name}")
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
    """Read-only callers cannot write (JWT scopes per route), and every function
    logs at INFO: not below (the runtime logs raw events, keys and tokens at
    TRACE), not above (Lambda files the metric documents, which carry no
    "level", as INFO)."""
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
            # Not below INFO (raw events at DEBUG/TRACE), not above: Lambda files a JSON line without
            # a "level" (the metric documents) as INFO, and would drop the metrics at WARN.
            if level != "INFO":
                problems.append(f"{name}: ApplicationLogLevel {level!r} (must be INFO)")
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
    print(f"{len(transformed['Resources'])} resources after the SAM transform")
    problems = []
    for what, found in (
        ("status events and wait messages through SQS", status_queue_problems(transformed)),
        ("schedules", schedule_problems(transformed)),
        ("auth and logging", auth_and_logging_problems(transformed)),
        ("one bootstrap", handler_problems(transformed)),
    ):
        for problem in found:
            print(f"{what}: {problem}")
        print(f"{what}: {len(found)} problems")
        problems += found
    for overrides, machines in SCENARIOS:
        evaluated = resolved(transformed, overrides)
        tracing = overrides.get("Tracing") == "Active"
        # X-Ray takes no other resource: the one "*" allowed, and only when tracing is asked for.
        wildcards = [(n, s) for n, s in wildcard_resources(evaluated) if not (tracing and set(as_list(s["Action"])) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"})]
        found = [f'{name}: a statement grants Resource "*": {json.dumps(statement)}' for name, statement in wildcards]
        found += role_problems(evaluated, machines, tracing) + guarded_problems(evaluated, machines) + size_problems(evaluated)
        for problem in found:
            print(f"with {overrides or 'the defaults'}: {problem}")
        print(f"with {overrides or 'the defaults'}: guarding {len(machines)} state machines, {len(found)} problems")
        problems += found
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
