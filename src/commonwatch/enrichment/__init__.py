"""Enrichment: AS number, AS name and country of addresses, from files the operator supplies."""
