"""Feeds: one parser module per feed family, the registry of feed names, and the collectors."""
