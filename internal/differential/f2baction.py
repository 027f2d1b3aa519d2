#!/usr/bin/env python3
"""fail2ban's own CommandAction as the oracle for action tags: run one actionban with a ban's
information the way fail2ban's server runs it (replaceTag, replaceDynamicTags, /bin/sh).

usage: f2baction.py PYTHONLIB BAN_JSON
BAN_JSON: {"name": jail name, "actionban": command, "info": {tag: value, ...},
           "fields": {capture: value, ...} (the ticket's data: <F-*> tags)}
"""
import json
import logging
import sys

sys.path.insert(0, sys.argv[1])
from fail2ban.server.action import CommandAction  # noqa: E402

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
spec = json.load(open(sys.argv[2]))


class Jail:
    name = spec["name"]


action = CommandAction(Jail(), "oracle")
action.actionban = spec["actionban"]
action.timeout = 10
action.actionstart_on_demand = False
action.actionstart = ""
info = dict(spec["info"])
info["F-*"] = spec.get("fields", {})
action.ban(info)  # raises when the command fails
