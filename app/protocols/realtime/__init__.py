"""Live transcription over WebSocket at /v1/realtime: OpenAI Realtime (GA and beta) and NVIDIA NIM."""
