"""moto_server as the local stack needs it: DynamoDB requests applied
atomically, and IAM enforced on every request.

Atomic DynamoDB: moto checks a write's condition and then applies it without
a lock, so under its threaded server two concurrent conditional writes to one
item can both succeed (seen: two refresh leases on one token version). Real
DynamoDB applies conditional writes to an item one at a time. This server
serializes the DynamoDB requests and leaves the rest concurrent (SQS long
polls must not block it).

IAM: every request must be signed by a known identity and allowed by its
policies, as in AWS. The local admin (keys from
CONNECTOR_LOCAL_ADMIN_ACCESS_KEY_ID / CONNECTOR_LOCAL_ADMIN_SECRET_ACCESS_KEY,
or the fake defaults below) may do anything; the local stack signs in as it
to create the resources and a role per function, and runs each function with
that role's credentials. moto checks the resource of a statement only for
the services that tell it which resource a request acts on: SQS does, and
this server adds DynamoDB (table or index), KMS (key), Secrets Manager
(secret) and EventBridge (event bus), so a grant scoped to another table,
key, secret or bus is refused too.
SQS batch calls need their single action's permission and a DynamoDB
transaction each item's own, as in AWS.
AWS managed policies (the ones SAM attaches) are loaded with their published
content. Same flags as moto_server: -H host, -p port; --no-iam turns the
enforcement off.
"""

import argparse
import json
import os
import threading

# Read by moto when its IAM backend starts.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto import settings  # noqa: E402
from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402
from moto.events.responses import EventsHandler  # noqa: E402
from moto.iam.access_control import IAMRequestBase  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.kms.responses import KmsResponse  # noqa: E402
from moto.kms.utils import _deserialize_ciphertext_blob  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from moto.secretsmanager.responses import SecretsManagerResponse  # noqa: E402
from werkzeug.serving import run_simple  # noqa: E402

# Obviously fake; the same defaults as connector-core's local credentials.
ADMIN_ACCESS_KEY_ID = os.environ.get("CONNECTOR_LOCAL_ADMIN_ACCESS_KEY_ID") or "AKIALOCALADMIN000000"
ADMIN_SECRET_ACCESS_KEY = os.environ.get("CONNECTOR_LOCAL_ADMIN_SECRET_ACCESS_KEY") or "local-admin-secret"
ADMIN_USER = "local-admin"


def dynamodb_resource(self) -> str:
    body = self.body
    if not isinstance(body, dict):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            return "*"
    table = body.get("TableName") or next(iter(body.get("RequestItems") or {}), None)
    if not table:
        return "*"
    if table.startswith("arn:"):
        arn = table
    else:
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
    if body.get("IndexName"):
        arn += f"/index/{body['IndexName']}"
    return arn


def kms_resource(self) -> str:
    backend = self.kms_backend
    try:
        key_id = self._get_param("KeyId")
        if not key_id and self._get_param("CiphertextBlob"):
            key_id = _deserialize_ciphertext_blob(self._get_param("CiphertextBlob")).key_id
        if not key_id:
            return "*"
        return backend.keys[backend.any_id_to_key_id(key_id)].arn
    except Exception:
        return "*"


def secret_resource(self) -> str:
    secret_id = self._get_param("SecretId")
    secret = self.backend.secrets.get(secret_id) if secret_id else None
    return secret.arn if secret is not None else "*"


def event_bus_resource(self) -> str:
    """The bus a request acts on: PutEvents is authorized on the bus its
    entries name (the default bus when they name none), as in AWS."""
    try:
        body = self.body if isinstance(self.body, dict) else json.loads(self.body or "{}")
    except ValueError:
        return "*"
    if "Entries" in body:
        buses = {entry.get("EventBusName") or "default" for entry in body.get("Entries") or []}
        if len(buses) != 1:
            return "*"
        bus = buses.pop()
    else:
        bus = body.get("EventBusName") or body.get("Name")
    if not bus:
        return "*"
    if bus.startswith("arn:"):
        return bus
    return f"arn:aws:events:{self.region}:{self.current_account}:event-bus/{bus}"


# SQS's batch calls are authorized by their single action's permission
# (docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-batch-api.html);
# moto asks for the batch name.
SQS_BATCH_PERMISSIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def with_sqs_batch_permissions(init):
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._action = SQS_BATCH_PERMISSIONS.get(self._action, self._action)

    return wrapped


# A DynamoDB transaction is authorized item by item, by the permission of
# each item's own action on its own table
# (docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html);
# moto asks for dynamodb:TransactWriteItems on no table.
TRANSACTION_ITEM_PERMISSIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def with_transactions_item_by_item(authorize):
    def wrapped(self, resource="*"):
        if self._get_action() not in ("TransactWriteItems", "TransactGetItems"):
            return authorize(self, resource)
        body = self.body if isinstance(self.body, dict) else json.loads(self.body or "{}")
        items = [(kind, op) for item in body.get("TransactItems", []) for kind, op in item.items()]
        if not items:
            return authorize(self, resource)
        for kind, op in items:
            permission = TRANSACTION_ITEM_PERMISSIONS.get(kind, kind)
            self._get_action = lambda: permission
            try:
                table = op.get("TableName", "")
                authorize(self, f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}")
            finally:
                del self._get_action

    return wrapped


def enforce_iam() -> None:
    IAMRequestBase.__init__ = with_sqs_batch_permissions(IAMRequestBase.__init__)
    DynamoHandler._authenticate_and_authorize_normal_action = with_transactions_item_by_item(
        DynamoHandler._authenticate_and_authorize_normal_action
    )
    DynamoHandler._determine_resource = dynamodb_resource
    KmsResponse._determine_resource = kms_resource
    SecretsManagerResponse._determine_resource = secret_resource
    EventsHandler._determine_resource = event_bus_resource
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user("us-east-1", ADMIN_USER)
    iam.put_user_policy(
        ADMIN_USER,
        "everything",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    key = iam.create_access_key(ADMIN_USER)
    key.access_key_id = ADMIN_ACCESS_KEY_ID
    key.secret_access_key = ADMIN_SECRET_ACCESS_KEY
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--no-iam", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if not args.no_iam:
        enforce_iam()
    app = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def atomic_dynamodb(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with dynamodb:
                return list(app(environ, start_response))
        return app(environ, start_response)

    run_simple(args.host, args.port, atomic_dynamodb, threaded=True)


if __name__ == "__main__":
    main()
