"""A real S3 endpoint for the tests: moto's server mode on a free port of 127.0.0.1.

The store is tested over HTTP with real boto3 clients (signing, retries, streaming
bodies, error parsing), not through moto's in-process patching. Import the
``s3_endpoint`` fixture into a test module to use it; the server lives for the session.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
#: Dummy credentials, given to each client so that no AWS configuration of the machine
#: running the tests is read or needed.
CREDENTIALS: dict[str, Any] = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": REGION,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    # One line per request would bury a failing test's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    """A raw boto3 client on the test server, to look behind the store's back."""
    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)
