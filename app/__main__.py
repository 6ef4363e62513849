"""`python -m app`: serve with uvicorn using ASR_* settings."""

from __future__ import annotations

import logging
import os

from app.main import create_app
from app.server import serve
from app.settings import Settings


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
