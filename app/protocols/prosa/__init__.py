"""Prosa.ai STT REST v2 jobs: /v2/speech/stt with config.wait and job_id polling."""
