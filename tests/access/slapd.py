"""A real OpenLDAP server for the tests: Debian's slapd with its own configuration, database and
port in a tmp folder, started by the test and stopped by its PID (never a system slapd)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import ldap3

SUFFIX = "dc=cw,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret"


def slapd_binary() -> str | None:
    return shutil.which("slapd") or (str(Path("/usr/sbin/slapd")) if Path("/usr/sbin/slapd").exists() else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slapd:
    def __init__(self, folder: Path, binary: str):
        self.folder = folder
        self.binary = binary
        self.port = _free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Slapd:
        db = self.folder / "db"
        db.mkdir(parents=True)
        conf = self.folder / "slapd.conf"
        schema = Path("/etc/ldap/schema")
        conf.write_text("\n".join([
            *(f"include {schema / name}" for name in ("core.schema", "cosine.schema", "inetorgperson.schema",
                                                       "nis.schema")),
            "modulepath /usr/lib/ldap", "moduleload back_mdb",
            f"pidfile {self.folder / 'slapd.pid'}", f"argsfile {self.folder / 'slapd.args'}",
            "database mdb", f'suffix "{SUFFIX}"', f'rootdn "{ROOT_DN}"', f"rootpw {ROOT_PW}",
            f"directory {db}", "maxsize 10485760",
            "access to attrs=userPassword by anonymous auth by self write by * none",
            "access to * by * read", "",
        ]), encoding="utf-8")
        self.log = open(self.folder / "slapd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([self.binary, "-f", str(conf), "-h", self.url + "/", "-d", "0"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (self.folder / "slapd.log").read_text()[-2000:]
                    raise RuntimeError(f"slapd did not start: {tail}") from exc
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def add(self, dn: str, classes: list[str], attrs: dict) -> None:
        conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=self.port, get_info=ldap3.NONE), ROOT_DN, ROOT_PW,
                                auto_bind=True)
        try:
            if not conn.add(dn, classes, attrs):
                raise RuntimeError(f"ldap add {dn}: {conn.result}")
        finally:
            conn.unbind()

    def seed(self) -> None:
        """People under ou=people, groups (groupOfNames) under ou=groups."""
        self.add(SUFFIX, ["dcObject", "organization"], {"o": "cw test", "dc": "cw"})
        for ou in ("people", "groups"):
            self.add(f"ou={ou},{SUFFIX}", ["organizationalUnit"], {"ou": ou})
        for uid, name, mail, pw in (("lin", "Lin Wei", "lin@dir.example", "lin-password-1"),
                                    ("zhao", "Zhao Min", "zhao@dir.example", "zhao-password-1"),
                                    ("nogroup", "No Group", "nogroup@dir.example", "nogroup-password-1")):
            self.add(f"uid={uid},ou=people,{SUFFIX}", ["inetOrgPerson"],
                     {"uid": uid, "cn": name, "sn": name.split()[-1], "mail": mail, "userPassword": pw})
        self.add(f"cn=commonwatch-analysts,ou=groups,{SUFFIX}", ["groupOfNames"],
                 {"cn": "commonwatch-analysts", "member": [f"uid=lin,ou=people,{SUFFIX}"]})
        self.add(f"cn=commonwatch-coordinators,ou=groups,{SUFFIX}", ["groupOfNames"],
                 {"cn": "commonwatch-coordinators", "member": [f"uid=zhao,ou=people,{SUFFIX}"]})
