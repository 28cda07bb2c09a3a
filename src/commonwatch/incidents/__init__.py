"""Incident reporting and coordination: national levels, regulatory clocks, cases across
organisations and borders."""
