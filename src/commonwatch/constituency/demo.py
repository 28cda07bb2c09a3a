"""Demo constituency: operators, a CII operator with a unit, a government body, partner CERTs,
and a user of every role. Addresses, AS numbers and domains come from documentation ranges."""

from __future__ import annotations

from sqlalchemy import select

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation

ORGS = [
    # key, name, local name, kind, sector, country, region, parent, networks, asns, domains, contacts
    ("telecom", "Northern Demo Telecom", "北方演示电信", "network-operator", "telecom", "CN", "Beijing", None,
     ["198.51.100.0/24", "2001:db8:100::/48"], [64500], ["demo-telecom.example"],
     [("abuse@demo-telecom.example", "abuse", "zh-CN")]),
    ("grid", "Eastern Demo Power Grid", "东部演示电网", "cii-operator", "energy", "CN", "Shanghai", None,
     ["203.0.113.0/25"], [64501], ["eastgrid.example"],
     [("soc@eastgrid.example", "security", "zh-CN"), ("ciso@eastgrid.example", "management", "en")]),
    ("dispatch", "Eastern Demo Power Grid Dispatch Centre", "东部演示电网调度中心", "cii-operator", "energy", "CN",
     "Shanghai", "grid", ["203.0.113.64/26"], [], ["dispatch.eastgrid.example"],
     [("dispatch-soc@eastgrid.example", "security", "zh-CN")]),
    ("bank", "Demo Commercial Bank", "演示商业银行", "cii-operator", "finance", "CN", "Guangdong", None,
     ["198.18.0.0/24", "2001:db8:200::/48"], [64502], ["demobank.example"],
     [("security@demobank.example", "security", "zh-CN")]),
    ("gov", "Demo City Data Bureau", "演示市数据局", "government", "e-government", "CN", "Zhejiang", None,
     ["192.0.2.0/24"], [], ["data.gov-demo.example"], [("it@gov-demo.example", "technical", "zh-CN")]),
    ("partner_de", "CERT Demo Germany", "德国演示 CERT", "partner-cert", "none", "DE", "", None, [], [], [],
     [("incident@cert-de.example", "security", "en")]),
    ("partner_sg", "CERT Demo Singapore", "新加坡演示 CERT", "partner-cert", "none", "SG", "", None, [], [], [],
     [("cert@cert-sg.example", "security", "en")]),
]

USERS = [
    ("admin", "admin@centre.example", "admin", None, "en", "Demo Administrator"),
    ("coordinator", "coordinator@centre.example", "coordinator", None, "zh-CN", "Demo Coordinator"),
    ("analyst", "analyst@centre.example", "analyst", None, "zh-CN", "Demo Analyst"),
    ("auditor", "auditor@centre.example", "auditor", None, "en", "Demo Auditor"),
    ("telecom", "noc@demo-telecom.example", "constituent", "telecom", "zh-CN", "Telecom NOC"),
    ("grid", "soc@eastgrid.example", "constituent", "grid", "zh-CN", "Grid SOC"),
    ("bank", "security@demobank.example", "constituent", "bank", "zh-CN", "Bank Security"),
    ("partner_de", "liaison@cert-de.example", "partner", "partner_de", "en", "CERT-DE Liaison"),
]


def load(ctx) -> None:
    from commonwatch.demo import DEMO_PASSWORD

    session = ctx.session
    now = ctx.clock.now()
    for key, name, local, kind, sector, country, region, parent, nets, asns, domains, contacts in ORGS:
        org = session.scalar(select(Organisation).where(Organisation.name == name))
        if org is None:
            org = registry.create_org(session, {
                "name": name, "name_local": local, "kind": kind, "sector": sector, "country": country,
                "region": region, "parent_id": ctx.orgs[parent].id if parent else None})
            for cidr in nets:
                registry.add_network(session, org, cidr, "demo")
            for asn in asns:
                registry.add_asn(session, org, asn)
            for domain in domains:
                registry.add_domain(session, org, domain)
            for email, role, language in contacts:
                registry.add_contact(session, org, {"email": email, "role": role, "language": language}, now)
        ctx.orgs[key] = org
    for key, email, role, org_key, language, name in USERS:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = access.create_user(session, email, role, DEMO_PASSWORD, name=name, language=language,
                                      org_ids=[ctx.orgs[org_key].id] if org_key else [])
        ctx.users[key] = user
        ctx.sign_ins.append((role, email, DEMO_PASSWORD))
