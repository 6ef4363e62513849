"""OpenAI /v1/audio/* (and NVIDIA NIM's flavour of it)."""
