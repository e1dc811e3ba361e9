"""moto's server (`moto_server`, same arguments), with DynamoDB's requests
handled one at a time.

DynamoDB evaluates a conditional write atomically. moto does not: its server
handles each request on a thread, and a PutItem reads the item, checks the
condition and stores the new one without a lock, so two concurrent claims can
both pass `attribute_not_exists` (a 1000-request burst on a loaded machine
started two executions of one ID). Serialising DynamoDB's requests gives the
emulator DynamoDB's semantics back; Step Functions' requests are untouched."""

import sys
import threading

from moto import server
from moto.moto_server import werkzeug_app


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


dispatcher = werkzeug_app.DomainDispatcherApplication
server.DomainDispatcherApplication = lambda create_app: DynamoDBOneAtATime(dispatcher(create_app))

if __name__ == "__main__":
    sys.exit(server.main())
