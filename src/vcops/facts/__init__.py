"""Facts: one script per server, one round trip, pure parsers into typed facts."""
