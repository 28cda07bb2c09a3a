"""The second-factor and sign-on records on SQLite and PostgreSQL: TOTP enrolment and replay,
one-time recovery codes, the reset, and the provisioning of an outside identity."""

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from commonwatch.access import mfa, sso
from commonwatch.access import services as access
from commonwatch.access.authsettings import AuthSettings
from commonwatch.access.models import AuditEntry, WebSession
from commonwatch.access.sso_models import ExternalIdentity
from commonwatch.config import Settings
from commonwatch.db import make_sessionmaker, session_scope


@pytest.fixture
def env(any_engine, clock, tmp_path):
    factory = make_sessionmaker(any_engine)
    settings = Settings(data_dir=tmp_path, database_url=str(any_engine.url))
    auth = AuthSettings(mfa_required_roles=["admin"], mfa_key_file=tmp_path / "k")
    return factory, settings, auth


def test_totp_recovery_codes_and_reset_on_both_databases(env, clock):
    factory, settings, auth = env
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        user = access.create_user(s, "root@x.example", "admin", "a-long-password")
        secret = mfa.start_totp(s, auth, settings, user)
        assert mfa.check_totp(s, auth, settings, user, pyotp.TOTP(secret).at(clock.now()), clock.now(),
                              confirming=True)
        codes = mfa.new_recovery_codes(s, user, clock.now())
        uid = user.id
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        user = access.get_user(s, uid)
        now = clock.now()
        assert not mfa.check_totp(s, auth, settings, user, pyotp.TOTP(secret).at(now), now)  # replay
        later = now + timedelta(seconds=30)
        assert mfa.check_totp(s, auth, settings, user, pyotp.TOTP(secret).at(later), later)
        assert mfa.use_recovery_code(s, user, codes[3], now)
        assert not mfa.use_recovery_code(s, user, codes[3], now)
        assert mfa.factors(s, uid) == mfa.Factors(totp=True, keys=0, recovery_left=9)
        s.add(WebSession(session_hash="h" * 64, csrf_token="c", user_id=uid, expires_at=now + timedelta(hours=1)))
    with session_scope(factory, actor="user:9 admin") as s:
        s.info["clock"] = clock
        before = mfa.reset(s, access.get_user(s, uid))
        assert before.totp and before.recovery_left == 9
    with factory() as s:
        assert mfa.factors(s, uid) == mfa.Factors(totp=False, keys=0, recovery_left=0)
        assert s.scalar(select(WebSession.id).where(WebSession.user_id == uid)) is None
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "mfa.reset")).one()
        assert entry.actor == "user:9 admin"


def test_an_outside_identity_is_provisioned_once_and_follows_its_groups(env, clock):
    factory, _settings, _auth = env
    mapping = sso.load_mapping()
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        first = sso.provision(s, mapping, provider="oidc:https://idp", subject="abc", email="p@x.example",
                              name="P", groups={"commonwatch-auditors"}, email_verified=True, now=clock.now())
        again = sso.provision(s, mapping, provider="oidc:https://idp", subject="abc", email="p@x.example",
                              name="P", groups={"commonwatch-analysts"}, email_verified=True, now=clock.now())
        assert first.id == again.id and again.role == "analyst"
        with pytest.raises(sso.Refused):
            sso.provision(s, mapping, provider="oidc:https://idp", subject="zzz", email="q@x.example", name="",
                          groups=set(), email_verified=True, now=clock.now())
    with factory() as s:
        assert len(s.scalars(select(ExternalIdentity)).all()) == 1
