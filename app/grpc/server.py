"""The grpc.aio server, on uvicorn's event loop (the decoder pool resolves its futures there).

Started with the app, before the models load (health says NOT_SERVING until they do), and stopped
before the pool: calls still open then end with a retryable UNAVAILABLE (their decodes cancelled).
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from app.grpc.calls import Calls
from app.grpc.health import Health
from app.protocols.ekstep import grpc_service as ekstep
from app.protocols.ekstep.messages import SERVICE as EKSTEP
from app.protocols.google import grpc_service as google
from app.protocols.riva import servicer as riva
from app.settings import Settings

log = logging.getLogger("asr.grpc")


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcFront:
    def __init__(self, state: Any, settings: Settings) -> None:
        self.settings = settings
        limit = settings.grpc_max_message_bytes
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.max_concurrent_streams", settings.grpc_max_streams),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not a second listener
            ]
        )
        calls = self.calls = Calls(state)
        handlers = [*google.handlers(calls, state), *riva.handlers(calls, state), *ekstep.handlers(calls, state)]
        self.server.add_generic_rpc_handlers(handlers)
        names = [*google.describe_services(), riva.SERVICE, EKSTEP]
        health_pb2_grpc.add_HealthServicer_to_server(Health(state, names), self.server)
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], self.server
        )
        self.port = 0

    async def start(self) -> int:
        address = bind_address(self.settings.host, self.settings.grpc_port)
        self.port = self.server.add_insecure_port(address)
        await self.server.start()
        log.info("gRPC listening on %s", bind_address(self.settings.host, self.port))
        return self.port

    async def stop(self, grace: float) -> None:
        await self.calls.close(grace)
        await self.server.stop(grace)
