from tests.incidents.conftest import rules  # noqa: F401  (the rules in force, as the incident tests use them)
