"""What each classification type means and what the recipient should do about it.

Type names are the RSIT 1.3 machine values and IntelMQ's additions; labels and advice are
messages (translated in ``locale/zh_CN.po``) so digests read naturally in both languages.
Operators who want other wording override the digest templates.
"""

from __future__ import annotations

from commonwatch.i18n import N_, _

TYPE_LABELS: dict[str, str] = {
    "spam": N_("Spam"),
    "harmful-speech": N_("Harmful speech"),
    "violence": N_("(Child) sexual exploitation, sexual or violent content"),
    "infected-system": N_("Infected system"),
    "c2-server": N_("Command-and-control server"),
    "malware-distribution": N_("Malware distribution"),
    "malware-configuration": N_("Malware configuration"),
    "scanner": N_("Scanning"),
    "sniffing": N_("Sniffing"),
    "social-engineering": N_("Social engineering"),
    "ids-alert": N_("Exploitation of known vulnerabilities"),
    "brute-force": N_("Login attempts"),
    "exploit": N_("New attack signature"),
    "privileged-account-compromise": N_("Privileged account compromise"),
    "unprivileged-account-compromise": N_("Unprivileged account compromise"),
    "application-compromise": N_("Application compromise"),
    "system-compromise": N_("System compromise"),
    "burglary": N_("Burglary"),
    "dos": N_("Denial of service"),
    "ddos": N_("Distributed denial of service"),
    "misconfiguration": N_("Misconfiguration"),
    "sabotage": N_("Sabotage"),
    "outage": N_("Outage"),
    "unauthorised-information-access": N_("Unauthorised access to information"),
    "unauthorised-information-modification": N_("Unauthorised modification of information"),
    "data-loss": N_("Data loss"),
    "data-leak": N_("Leak of confidential information"),
    "unauthorised-use-of-resources": N_("Unauthorised use of resources"),
    "unauthorized-use-of-resources": N_("Unauthorised use of resources"),
    "copyright": N_("Copyright"),
    "masquerade": N_("Masquerade"),
    "phishing": N_("Phishing"),
    "weak-crypto": N_("Weak cryptography"),
    "ddos-amplifier": N_("DDoS amplifier"),
    "potentially-unwanted-accessible": N_("Potentially unwanted accessible service"),
    "information-disclosure": N_("Information disclosure"),
    "vulnerable-system": N_("Vulnerable system"),
    "other": N_("Uncategorised"),
    "undetermined": N_("Undetermined"),
    "test": N_("Test"),
    "blacklist": N_("Listed on a blocklist"),
    "dga-domain": N_("DGA domain"),
    "malware": N_("Malware"),
    "proxy": N_("Open proxy"),
    "tor": N_("Tor node"),
}

ADVICE: dict[str, str] = {
    "infected-system": N_("A host on your network talks to malware infrastructure. Identify the machine behind "
                          "the address and time given, isolate it, remove the malware (reinstall if in doubt) "
                          "and change the credentials used on it."),
    "c2-server": N_("A host on your network controls malware. Take it offline or block the port, preserve "
                    "evidence (disk, memory, logs) and tell us whether it was compromised or rented."),
    "malware-distribution": N_("A URL or host on your network serves malware. Remove the files, find how they "
                               "were placed (compromised CMS, stolen credentials) and close that hole."),
    "phishing": N_("A page on your network imitates another organisation to steal credentials. Take the page "
                   "down, find how it was placed and check the server for other unwanted content."),
    "scanner": N_("A host on your network scans others. Check whether it is an authorised scanner; if not, it "
                  "is probably compromised: isolate and investigate it."),
    "brute-force": N_("A host on your network tries to log in to other systems. It is probably compromised: "
                      "isolate it and investigate."),
    "ids-alert": N_("Attempts to exploit a known vulnerability came from your network. Investigate the host; "
                    "it is probably compromised."),
    "ddos-amplifier": N_("A service on your network can be abused to amplify denial-of-service attacks (open "
                         "DNS resolver, NTP, SSDP, memcached, ...). Restrict it to the clients that need it or "
                         "turn it off."),
    "potentially-unwanted-accessible": N_("A service that should not face the Internet is reachable (remote "
                                          "desktop, databases, management interfaces, ...). Put it behind a VPN "
                                          "or firewall, and check it for signs of misuse."),
    "vulnerable-system": N_("A host on your network runs software with a known vulnerability. Apply the "
                            "vendor's update or mitigation and check the host for compromise."),
    "weak-crypto": N_("A service on your network offers outdated cryptography. Disable old protocol versions "
                      "and weak ciphers, and replace weak certificates."),
    "information-disclosure": N_("A service on your network gives away information it should not. Restrict "
                                 "access and review what was exposed."),
    "system-compromise": N_("A system on your network was compromised. Isolate it, preserve evidence, rebuild "
                            "it from trusted media and report the incident to us."),
    "application-compromise": N_("An application on your network was compromised. Take it offline, preserve "
                                 "evidence, patch and restore it from a clean state."),
    "data-leak": N_("Confidential information from your organisation was found exposed. Assess what leaked, "
                    "revoke exposed credentials and consider your duty to report."),
    "spam": N_("A host on your network sends spam. Check for compromised accounts or an open relay."),
    "dos": N_("A host on your network takes part in denial-of-service attacks. Investigate and isolate it."),
    "ddos": N_("A host on your network takes part in denial-of-service attacks. Investigate and isolate it."),
    "proxy": N_("An open proxy on your network is used by others to hide. Close it or require authentication."),
    "blacklist": N_("An address of yours is on a blocklist. Find out why (spam, malware, scanning) and fix the "
                    "cause before asking for removal."),
    "dga-domain": N_("A host on your network looks up algorithmically generated domains, a sign of malware. "
                     "Find and clean the host."),
    "malware": N_("Malware was seen on your network. Find the host, isolate it and clean or reinstall it."),
}

_GENERIC = N_("Check the hosts listed in the attachment, fix the cause and tell us the outcome in the portal.")


def type_label(kind: str) -> str:
    """The classification type's name in the current language (the machine value if unknown)."""
    from commonwatch.labels import label

    return label(kind, "event_type")


def advice_for(kind: str) -> str:
    """What to do about events of this type, in the current language."""
    return _(ADVICE.get(kind, _GENERIC))


SEVERITY_LABELS = {"info": N_("info"), "low": N_("low"), "medium": N_("medium"), "high": N_("high"),
                   "critical": N_("critical")}


def severity_label(severity: str) -> str:
    from commonwatch.labels import label

    return label(severity, "severity")
