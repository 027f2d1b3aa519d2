#!/usr/bin/env python3
"""Writes a fail2ban database with fail2ban's own code (its Fail2BanDb, BanTicket), as fail2ban's
server writes it when it bans: the test's oracle for what portcullis import-fail2ban reads.

usage: f2bdb.py PYTHONLIB DBFILE SPEC_JSON (f2bcorpus.WriteDB runs it)
SPEC_JSON: [{"jail": name, "ip": address, "time": unix seconds, "bantime": seconds (-1 permanent),
             "bancount": n}, ...]
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
from fail2ban.server.database import Fail2BanDb  # noqa: E402
from fail2ban.server.ticket import BanTicket  # noqa: E402


class Actions:
    def getBanTime(self):
        return 600


class Jail:
    def __init__(self, name):
        self.name = name
        self.actions = Actions()


db = Fail2BanDb(sys.argv[2])
jails = {}
for b in json.load(open(sys.argv[3])):
    jail = jails.get(b["jail"])
    if jail is None:
        jail = jails[b["jail"]] = Jail(b["jail"])
        db.addJail(jail)
    t = BanTicket(b["ip"], b["time"], ["a matched line of " + b["ip"]])
    t.setBanTime(b["bantime"])
    t.setBanCount(b["bancount"])
    db.addBan(jail, t)
db.close()
