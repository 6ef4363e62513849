"""The gRPC front (Google Speech, Operations, NVIDIA Riva ASR, health, reflection) on uvicorn's loop."""
