"""The constituency registry: organisations, networks, AS numbers, domains, contacts."""
