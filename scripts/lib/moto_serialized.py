"""moto_server with one request at a time inside moto.

moto's in-memory backends are not thread-safe: a DynamoDB Scan that runs while a
TransactWriteItems adds items fails with "RuntimeError: dictionary changed size during
iteration" (a 500 no real AWS endpoint would give). Connections are still accepted
concurrently; only the backend call is serialised, which is what each AWS API call is
anyway: atomic. Usage: python3 moto_serialized.py -H 127.0.0.1 -p 5000
"""

import argparse
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

import moto_ec2_fidelity
import moto_dynamodb_fast_tx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()

    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    moto_ec2_fidelity.install()

    # TransactWriteItems' rollback in proportion to the items written, not the whole table.
    moto_dynamodb_fast_tx.install()
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            # moto answers with complete bodies; materialise them inside the lock.
            return list(app(environ, start_response))

    run_simple(args.host, args.port, serialised, threaded=True)


if __name__ == "__main__":
    main()
