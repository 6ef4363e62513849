"""One thin adapter per wire protocol, each translating to and from the neutral core."""
