#!/usr/bin/env python3
"""fail2ban's own engine as the oracle: run one of its filters over a log, line by line, with its
Filter (prefregex, multi-line <F-MLFID> cache, date detection) and print each failure it reports
as a JSON line: {"line": N (1-based), "id": ..., "time": ...}.

usage: f2bfailures.py PYTHONLIB ETC_FAIL2BAN FILTER[args] LOG

PYTHONLIB is the dist-packages folder holding fail2ban's package (Debian's, unpacked at test time,
never committed); the filter is read as fail2ban-regex reads it, from ETC_FAIL2BAN/filter.d.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
from fail2ban.client.filterreader import FilterReader  # noqa: E402
from fail2ban.server.filter import Filter  # noqa: E402

basedir, spec, log = sys.argv[2], sys.argv[3], sys.argv[4]
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
flt = Filter(None)
flt.checkFindTime = False
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

out = sys.stdout
with open(log, encoding="utf-8", errors="surrogateescape") as f:
    for n, line in enumerate(f, 1):
        for fail in flt.processLine(line.rstrip("\n")) or []:
            out.write(json.dumps({"line": n, "id": str(fail[1]), "time": int(fail[2])}) + "\n")
