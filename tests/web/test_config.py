"""Settings: environment over the TOML file over defaults."""

from commonwatch.config import Settings


def test_toml_file_then_environment(tmp_path, monkeypatch):
    toml = tmp_path / "commonwatch.toml"
    toml.write_text('timezone = "Europe/Berlin"\ncentre_name = "CERT Example"\n'
                    'outbound_allowlist = ["https://feeds.example/"]\n', encoding="utf-8")
    monkeypatch.setenv("COMMONWATCH_CONFIG", str(toml))
    monkeypatch.setenv("COMMONWATCH_CENTRE_NAME", "From env")
    monkeypatch.setenv("COMMONWATCH_DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.timezone == "Europe/Berlin" and s.centre_name == "From env"
    assert s.outbound_allowlist == ["https://feeds.example/"]
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'commonwatch.db'}"
    monkeypatch.setenv("COMMONWATCH_OUTBOUND_ALLOWLIST", "https://a.example/, https://b.example/")
    assert Settings().outbound_allowlist == ["https://a.example/", "https://b.example/"]


def test_postgres_url_means_psycopg3():
    from commonwatch.db import normalise_url

    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
