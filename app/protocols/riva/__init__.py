"""NVIDIA Riva ASR (nvidia.riva.asr.RivaSpeechRecognition) over gRPC, for nvidia-riva-client."""
