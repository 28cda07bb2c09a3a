"""Intelligence exchange: indicators, STIX 2.1, a TAXII 2.1 server and client, MISP, TLP 2.0."""
