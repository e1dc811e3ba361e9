"""moto's server (`moto_server`, same arguments), with DynamoDB's requests
handled one at a time.

DynamoDB evaluates a conditional write atomically. moto does not: its server
handles each request on a thread, and a PutItem reads the item, checks the
condition and stores the new one without a lock, so two concurrent claims can
both pass `attribute_not_exists` (a 1000-request burst on a loaded machine
started two executions of one ID). Serialising DynamoDB's requests gives the
emulator DynamoDB's semantics back; Step Functions' requests are untouched.

Three changes buy speed only, measured with py-spy over the integration tests
(together about a third of moto's CPU there), and change no answer:
- a state machine definition is validated once: moto parses it with a Python
  ANTLR parser at every CreateStateMachine, and the tests create the same few
  definitions again and again (a refused definition is not remembered);
- the list of moto's services, which moto reads from the disk at every request
  to find the service a request is for, is read once;
- a request's line is not logged (an error's traceback still is)."""

import logging
import sys
import threading

from moto import backends, server
from moto.moto_server import werkzeug_app
from moto.stepfunctions.parser.models import StepFunctionsParserBackend


class DynamoDBOneAtATime:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # The whole answer inside the lock: a response body can be lazy.
            return list(self.app(environ, start_response))


validate_definition = StepFunctionsParserBackend._validate_definition
valid_definitions = set()


def validate_definition_once(definition):
    if not isinstance(definition, str):  # (not a request an SDK sends: moto answers it)
        return validate_definition(definition=definition)
    if definition not in valid_definitions:
        validate_definition(definition=definition)
        valid_definitions.add(definition)


StepFunctionsParserBackend._validate_definition = staticmethod(validate_definition_once)
moto_modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: moto_modules
logging.getLogger("werkzeug").setLevel(logging.WARNING)

dispatcher = werkzeug_app.DomainDispatcherApplication
server.DomainDispatcherApplication = lambda create_app: DynamoDBOneAtATime(dispatcher(create_app))

if __name__ == "__main__":
    sys.exit(server.main())
