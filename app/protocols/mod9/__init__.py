"""Mod9 ASR WebSocket: JSON options first, then binary audio; one JSON reply per result."""
