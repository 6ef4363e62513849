"""Benchmarks: HTTP overhead and throughput of the server against raw faster-whisper."""
