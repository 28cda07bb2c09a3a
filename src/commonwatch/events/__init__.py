"""Security events: the canonical schema, taxonomy, the event store and search."""
