#!/usr/bin/env python3
"""fail2ban's own engine as the oracle at the ban level: read a configuration folder as
fail2ban-client reads it, hand its commands to fail2ban's Server (jails are created, never
started: no thread runs, no action is executed), then feed a log line by line with fail2ban's
clock (MyTime) set to each line's time, running in order what the filter, observer and actions
threads would: Filter.processLineAndAdd, Observer.failureFound / banFound (ban history in an
in-memory database, bantime.increment), Actions' ban and unban checks. Each ban and unban is
printed as a JSON line:
  {"op": "ban", "jail": J, "address": A, "start": T, "duration": S (-1: forever), "end": E, "bancount": N}
  {"op": "unban", "jail": J, "address": A, "end": E}
  {"op": "prolong", "jail": J, "address": A, "end": E}  (a ban in force ends later)
and last {"op": "last", "end": T}: the time of the last line with a failure (unbans after it are
seen by one engine and not the other: portcullis replay's clock is its failures' time).

usage: f2bbans.py PYTHONLIB CONFDIR NOW LOG [exact]

NOW (unix seconds) is the clock year-less stamps are read against, as portcullis replay --now.
With "exact", FailManager counts a key's failures exactly within findtime instead of fail2ban's
rate estimate: portcullis's one deliberate difference at the ban level (see differential.go).
"""
import json
import math
import sys
import time

sys.path.insert(0, sys.argv[1])
from fail2ban.client.configurator import Configurator  # noqa: E402
from fail2ban.server import observer  # noqa: E402
from fail2ban.server.mytime import MyTime  # noqa: E402
from fail2ban.server.server import Server  # noqa: E402
from fail2ban.server.ticket import FailTicket  # noqa: E402

confdir, now, log = sys.argv[2], int(sys.argv[3]), sys.argv[4]
exact = len(sys.argv) > 5 and sys.argv[5] == "exact"

if exact:
    # portcullis counts a key's failures within findtime of its newest one exactly; fail2ban
    # scales its count by the rate over the previous interval once the first failure is older
    # than findtime (FailTicket.adjustTime). Everything else -- cleanup, observer increments,
    # bans -- stays fail2ban's.
    def adjust(self, time, maxTime):
        held = getattr(self, "_exact", None)
        if held is None:
            held = self._exact = [[self._time, self._retry]]
        held.append([time, 0])  # inc() adds the new failure's count (several: a known offender)
        self._time = max(self._time, time)
        held[:] = [h for h in held if h[0] > self._time - maxTime]
        self._retry = sum(h[1] for h in held)

    inc = FailTicket.inc

    def counted(self, matches=None, attempt=1, count=1):
        inc(self, matches, attempt, count)
        if getattr(self, "_exact", None):
            self._exact[-1][1] += count
    FailTicket.inc = counted

    # fail2ban forgets a key once its clock is findtime past the key's newest failure
    # (FailManager.cleanup, every few seconds), so a failure written a moment late (two
    # writers to one log) may start a new count. portcullis counts it with the failures within
    # findtime of it, as if the lines were in order. In order, cleanup forgets only failures the
    # count drops anyway.
    from fail2ban.server.failmanager import FailManager
    FailManager.cleanup = lambda self, time: None
    FailTicket.adjustTime = adjust

    # fail2ban stores each ban's count (with overalljails: the count in every jail) in the
    # jail's history row, and overalljails sums those rows, so its count outgrows the bans made
    # (three bans in two jails count 1, 2, 4). portcullis counts the bans: a row holds the
    # jail's own count, and their sum is the address's bans in every jail.
    from fail2ban.server.database import Fail2BanDb
    addBan = Fail2BanDb.addBan

    def ownCount(self, jail, ticket):
        addBan(self, jail, ticket)
        with self._lock:
            ip = str(ticket.getID())
            self._db.execute("UPDATE bips SET bancount = (SELECT count(*) FROM bans WHERE ip = ? AND jail = ?)"
                             " WHERE ip = ? AND jail = ?", (ip, jail.name, ip, jail.name))
            self._db.commit()
    Fail2BanDb.addBan = ownCount

out = sys.stdout
conf = Configurator()
conf.setBaseDir(confdir)
conf.readAll()
if not conf.getOptions(None, {}, ignoreWrong=False):
    sys.exit("fail2ban cannot read the configuration in %s" % confdir)
conf.convertToProtocol()
server = Server()
transm = server._Server__transm
for cmd in conf.getConfigStream():
    # No action runs (only the decisions are compared), nothing is started, the history
    # is kept in memory.
    if cmd[0] == "set" and cmd[1] == "dbfile":
        cmd = ["set", "dbfile", ":memory:"]
    elif cmd[0] in ("start", "server-stream", "server-status") or (cmd[0] == "set" and len(cmd) > 2 and (
            cmd[1] in ("logtarget", "syslogsocket", "loglevel", "pidfile", "socket")
            or str(cmd[2]).startswith("action") or cmd[2] == "addaction")):
        continue
    if cmd[0] == "multi-set" and str(cmd[2]).startswith("action"):
        continue
    transm.proceed(cmd)

def ceilEnd(ticket, jail):
    """A ban's end in whole seconds, rounded up as portcullis bans (-1: never): a computed ban
    time (bantime.formula) is fractional, and the first whole second after it is the first one
    fail2ban's ban is over too."""
    bt = ticket.getBanTime(jail.actions.banManager.getBanTime())
    return -1 if bt == -1 else math.ceil(ticket.getTime() + bt)


obs = observer.ObserverThread()  # its methods only: the thread is never started


class Inline:
    """Observers.Main run synchronously: the event happens where the thread would pick it up."""
    def add(self, name, *args):
        getattr(obs, name)(*args)

    def add_timer(self, *args):
        pass  # prolonging is an action's business; actions do not run here

    def add_named_timer(self, *args):
        pass


observer.Observers.Main = Inline()
if exact:
    # With overalljails, fail2ban takes a ban made in the same second as another jail's ban of
    # the address for one restored from its database (incrBanTime: ticket time <= last ban) and
    # leaves it out of the history. portcullis restores no ban by reading a log again: every ban
    # it makes is counted.
    incr = obs.incrBanTime

    def incrOwn(jail, banTime, ticket):
        bt = incr(jail, banTime, ticket)
        if ticket.restored and not any(row[1] >= ticket.getTime() for row in jail.database.getBan(ticket.getID(), jail)):
            ticket.restored = False
        return bt
    obs.incrBanTime = incrOwn
jails = [server._Server__jails[name] for name in server._Server__jails]
for jail in jails:
    jail.isAlive = lambda: True
    bm = jail.actions.banManager

    def wrapBan(orig, jail=jail):
        def addBanTicket(ticket, reason=None):
            reason = {} if reason is None else reason
            old = jail.actions.banManager._BanManager__banList.get(ticket.getID())
            before = old and ceilEnd(old, jail)
            ok = orig(ticket, reason=reason)
            if ok:
                jail._new.append(ticket)
            elif reason.get("prolong") and ceilEnd(old, jail) != before:
                out.write(json.dumps({"op": "prolong", "jail": jail.name, "address": str(old.getID()),
                                      "end": ceilEnd(old, jail)}) + "\n")
            return ok
        return addBanTicket

    def wrapUnban(orig, jail=jail):
        def unBanList(time, maxCount=0x7fffffff):
            lst = orig(time, maxCount)
            for t in lst:
                out.write(json.dumps({"op": "unban", "jail": jail.name, "address": str(t.getID()),
                                      "end": ceilEnd(t, jail)}) + "\n")
            return lst
        return unBanList

    jail._new = []
    bm.addBanTicket = wrapBan(bm.addBanTicket)
    bm.unBanList = wrapUnban(bm.unBanList)

clock = 0  # fail2ban's clock, as a live one's, never goes back
last = None  # the time of the last line with a failure


def feed(jail, line):
    """Run line through jail as its filter, observer and actions threads would; print and return
    the bans it made."""
    global clock, last
    flt = jail.filter
    MyTime.setTime(now)
    found = flt.dateDetector.getTime(line)
    at = max(clock, int(found[0])) if found else (clock or now)
    MyTime.setTime(at)
    fails = list(flt.processLine(line))
    if fails or not exact:
        # With "exact", the clock is the time of the lines with failures, as portcullis
        # replay's clock is its failures' time (it reads no other line's stamp).
        clock = at
    if fails:
        last = clock
    # A ban of bantime seconds from T holds [T, T+bantime) in portcullis, as the kernel's
    # timeout does, and [T, T+bantime] in fail2ban (unBanList: time > end): with "exact",
    # the unban check looks an instant ahead.
    MyTime.setTime(clock + 1e-6 if exact else clock)
    jail.actions._Actions__checkUnBan(0x7fffffff)
    MyTime.setTime(clock)
    flt.processLine = lambda line, date=None: fails  # found above: processed once
    flt.processLineAndAdd(line)
    del flt.processLine
    jail.actions._Actions__checkBan()
    bm = jail.actions.banManager
    new, jail._new = jail._new, []
    for t in new:
        bt = math.ceil(t.getBanTime(bm.getBanTime()))
        out.write(json.dumps({"op": "ban", "jail": jail.name, "address": str(t.getID()),
                              "start": int(t.getTime()), "duration": bt, "end": ceilEnd(t, jail),
                              "bancount": t.getBanCount()}) + "\n")
    return new


# A jail named recidive reads fail2ban's own log: each ban of another jail is written there as
# fail2ban.actions writes it ("NOTICE [sshd] Ban 192.0.2.1") and read at once.
recidive = [j for j in jails if j.name == "recidive"]
with open(log, encoding="utf-8", errors="surrogateescape") as f:
    for line in f:
        line = line.rstrip("\n")
        for jail in jails:
            if jail in recidive:
                continue
            for t in feed(jail, line):
                notice = "%s,000 fail2ban.actions        [1]: NOTICE  [%s] Ban %s" % (
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.getTime())), jail.name, t.getID())
                for r in recidive:
                    feed(r, notice)
        # A recidive jail's bans end by the clock too, lines of its own or not.
        for r in recidive:
            MyTime.setTime(clock + 1e-6 if exact else clock)
            r.actions._Actions__checkUnBan(0x7fffffff)
            MyTime.setTime(clock)
out.write(json.dumps({"op": "last", "end": last}) + "\n")
