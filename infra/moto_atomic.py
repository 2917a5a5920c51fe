"""moto_server, with each DynamoDB request applied atomically.

moto's DynamoDB checks a write's condition and then applies it without a
lock, so under its threaded server two concurrent conditional writes to one
item can both succeed (seen: two refresh leases on one token version). Real
DynamoDB applies conditional writes to an item one at a time. This server
serializes the DynamoDB requests and leaves the rest concurrent (SQS long
polls must not block it). Same flags as moto_server: -H host, -p port.
"""

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
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
