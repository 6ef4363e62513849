"""grpc.health.v1: SERVING once the models are loaded and the decoders up, NOT_SERVING before and
while draining for a shutdown (the same answer as /v1/health/ready). Public, like the HTTP probes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from app.state import state_ready

WATCH_PERIOD = 0.5
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self, state: Any, services: list[str]) -> None:
        self.state = state
        self.services = {"", *services}

    def _status(self, service: str) -> int | None:
        if service not in self.services:
            return None
        return (
            health_pb2.HealthCheckResponse.SERVING
            if state_ready(self.state)
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        status = self._status(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: Any
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = None
        while True:
            status = self._status(request.service) or health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(WATCH_PERIOD)
