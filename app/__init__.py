"""Self-hosted speech-to-text server: one decoder pool, several vendor dialects."""

__version__ = "0.1.0"
