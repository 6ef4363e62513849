"""Yandex SpeechKit Cloud v1 POST /asr_xml: chunked upload, recognition while it arrives, XML answer."""
