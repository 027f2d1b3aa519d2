#!/usr/bin/env python3
"""fail2ban's own engine as the oracle: run one of its filters over a log, line by line, with its
Filter (prefregex, multi-line <F-MLFID> cache, date detection) and print each failure it reports
as a JSON line: {"line": N (1-based), "id": ..., "time": ...}.

usage: f2bfailures.py PYTHONLIB ETC_FAIL2BAN FILTER[args] LOG [NOW]
       f2bfailures.py PYTHONLIB ETC_FAIL2BAN --batch JOBS

PYTHONLIB is the dist-packages folder holding fail2ban's package (Debian's, unpacked at test time,
never committed); the filter is read as fail2ban-regex reads it, from ETC_FAIL2BAN/filter.d. NOW (unix seconds) is
fail2ban's clock, which year-less stamps are read against; the wall clock without it. With
--batch, JOBS holds one JSON object per line, {"spec", "log", "now", "tz", "out"}: each job's
failures go to its "out" file, stamps read in time zone "tz" -- one interpreter for many logs.
"""
import json
import os
import sys
import time

sys.path.insert(0, sys.argv[1])
from fail2ban.client.filterreader import FilterReader  # noqa: E402
from fail2ban.server.filter import Filter  # noqa: E402
from fail2ban.server.mytime import MyTime  # noqa: E402
from fail2ban.server.utils import Utils  # noqa: E402

basedir = sys.argv[2]


def failures(spec, log, out):
    name, _, args = spec.partition("[")
    opts = {}
    if args:
        for kv in args.rstrip("]").split(","):
            k, _, v = kv.partition("=")
            opts[k.strip()] = v.strip()
    reader = FilterReader(name, "differential", opts, share_config={}, basedir=basedir)
    if not reader.read():
        sys.exit("cannot read filter %s in %s" % (name, basedir))
    reader.getOptions({})
    # usedns = no: portcullis never resolves a host name a line names (its owner controls what
    # it resolves to); fail2ban's default (warn) looks it up. A failure that names no address is
    # none here.
    flt = Filter(None, useDns="no")
    flt.checkFindTime = False
    # portcullis's multi-line cache holds 100,000 connections; fail2ban's 100 (a busy host has
    # more open at once, and fail2ban then loses their context): the oracle gets ours. Both
    # forget a connection after 5 minutes (fail2ban's clock, our log's).
    flt._Filter__mlfidCache = Utils.Cache(maxCount=100000, maxTime=5 * 60)
    setters = {
        "prefregex": lambda v: setattr(flt, "prefRegex", v),
        "addfailregex": flt.addFailRegex,
        "addignoreregex": flt.addIgnoreRegex,
        "datepattern": flt.setDatePattern,
        "maxlines": lambda v: flt.setMaxLines(int(v)),
    }
    for opt in reader.convert():
        if opt[0] == "multi-set" and opt[2] in setters:
            for v in opt[3]:
                setters[opt[2]](v)
        elif opt[0] == "set" and opt[2] in setters:
            setters[opt[2]](opt[3])
    with open(log, encoding="utf-8", errors="surrogateescape") as f:
        for n, line in enumerate(f, 1):
            for fail in flt.processLine(line.rstrip("\n")) or []:
                if fail[2] is None:
                    continue  # no date: fail2ban's daemon fails on the line, portcullis skips it
                out.write(json.dumps({"line": n, "id": str(fail[1]), "time": int(fail[2])}) + "\n")


if sys.argv[3] == "--batch":
    with open(sys.argv[4]) as jobs:
        for job in map(json.loads, jobs):
            os.environ["TZ"] = job.get("tz") or "UTC"
            time.tzset()
            MyTime.setTime(job.get("now") or None)
            with open(job["out"], "w") as out:
                failures(job["spec"], job["log"], out)
else:
    if len(sys.argv) > 5:
        MyTime.setTime(int(sys.argv[5]))
    failures(sys.argv[3], sys.argv[4], sys.stdout)
