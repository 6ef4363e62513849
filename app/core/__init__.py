"""The neutral core: requests, transcripts, errors, audio, engine, pool. No wire formats here."""
