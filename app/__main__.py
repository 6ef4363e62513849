"""`python -m app`: serve with uvicorn using ASR_* settings."""

from __future__ import annotations

import logging
import os

import uvicorn

from app.main import create_app
from app.settings import Settings


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Below Kubernetes' 30 s grace period: in-flight requests drain, then the pool stops.
        timeout_graceful_shutdown=25,
    )


if __name__ == "__main__":
    main()
