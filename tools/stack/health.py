"""Probes: is a port free, is NATS accepting, is the emulator healthy, is a gRPC service serving."""

from __future__ import annotations

import errno
import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["emulator_healthy", "grpc_serving", "http_ok", "nats_accepting", "port_free"]


def port_free(host: str, port: int) -> bool:
    """Nothing listens on host:port (a listener on 0.0.0.0 counts too).

    gRPC servers bind with SO_REUSEPORT, so a second one would silently share a taken port:
    checking first turns that into a clear error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def nats_accepting(url: str, timeout_s: float = 1.0) -> bool:
    """A NATS server answers a connection with its INFO line."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 4222), timeout=timeout_s
        ) as s:
            return s.recv(5).startswith(b"INFO")
    except OSError:
        return False


def emulator_healthy(base_url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_emulator/health", timeout=timeout_s) as resp:
            return bool(json.loads(resp.read()).get("ok"))
    except (OSError, ValueError, urllib.error.URLError):
        return False


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    """GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def grpc_serving(address: str, service: str = "", timeout_s: float = 1.0) -> bool:
    """grpc.health.v1 Check answers SERVING."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
