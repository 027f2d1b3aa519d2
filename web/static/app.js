// The status page's live view: it polls the read-only JSON API every two seconds and redraws
// the tables and charts. Every value goes into the page as text (textContent, attribute values),
// never as markup: log lines and jail names are attacker-written.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const svgNS = "http://www.w3.org/2000/svg";
  let bans = [], sortKey = "start", sortDir = -1, seen = null;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function when(t) {
    return t === 0 ? "forever" : new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function points(vs, n) {
    vs = vs.slice(-n);
    const hi = Math.max(1, ...vs);
    return vs.map((v, i) => {
      const x = vs.length > 1 ? (i * 120) / (vs.length - 1) : 0;
      return x.toFixed(1) + "," + (24 - (v * 22) / hi - 1).toFixed(1);
    }).join(" ");
  }
  function spark(vs, n, cls) {
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 120 24");
    svg.setAttribute("width", "120");
    svg.setAttribute("height", "24");
    const p = document.createElementNS(svgNS, "polyline");
    p.setAttribute("class", cls);
    p.setAttribute("points", points(vs, n));
    svg.appendChild(p);
    return svg;
  }
  function replace(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function drawSummary(s) {
    $("t-banned").textContent = s.totals.Banned;
    $("t-failures").textContent = s.totals.Failures;
    $("t-bans").textContent = s.totals.Bans;
    $("t-lines").textContent = s.totals.Lines;
    replace($("jails").tBodies[0], s.jails.map((j) => {
      const tr = el("tr");
      tr.dataset.jail = j.name;
      tr.append(el("td", j.name));
      const f = el("td"); f.append(spark(j.failures_per_minute, 60, "f"));
      const b = el("td"); b.append(spark(j.bans_per_minute, 60, "b"));
      const day = el("td"); day.append(spark(j.failures_per_minute, 1440, "d"));
      const bday = el("td"); bday.append(spark(j.bans_per_minute, 1440, "b"));
      tr.append(f, b, day, bday, el("td", j.banned, "n banned"), el("td", j.total.failures, "n failures"), el("td", j.total.bans, "n bans"));
      return tr;
    }));
    $("day").querySelector("polyline").setAttribute("points", points(s.lines_per_minute, 1440));
    replace($("sources").tBodies[0], s.sources.map((x) => {
      const tr = el("tr");
      tr.append(el("td", x.name), el("td", x.lines, "n"), el("td", x.bytes, "n"), el("td", x.skipped, "n"), el("td", x.dropped, "n"));
      return tr;
    }));
  }

  function drawBans() {
    const q = $("search").value.trim().toLowerCase();
    const rows = bans.filter((b) => !q || [b.prefix, b.jail, b.origin, ...b.evidence].some((v) => v.toLowerCase().includes(q)));
    rows.sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
    });
    const fresh = new Set();
    replace($("bans").tBodies[0], rows.length === 0 ? [(() => { const tr = el("tr", undefined, "none"); const td = el("td", "no bans in force"); td.colSpan = 7; tr.append(td); return tr; })()] :
      rows.map((b) => {
        const key = b.jail + " " + b.prefix;
        const tr = el("tr");
        if (seen && !seen.has(key)) tr.className = "new";
        fresh.add(key);
        const ev = el("td", undefined, "ev");
        b.evidence.forEach((line) => ev.append(el("div", line)));
        tr.append(el("td", b.prefix, "addr"), el("td", b.jail), el("td", when(b.start)), el("td", when(b.end)), el("td", b.count, "n"), el("td", b.origin), ev);
        return tr;
      }));
    seen = new Set(bans.map((b) => b.jail + " " + b.prefix));
  }

  function drawEvents(evs, top) {
    replace($("timeline"), evs.slice(0, 50).map((e) => {
      const li = el("li", undefined, e.op === "unban" ? "unban" : "ban");
      li.append(el("time", when(e.time)), " " + e.op + " ", el("span", e.prefix, "addr"), " in " + e.jail + " (" + e.reason + ")");
      return li;
    }));
    const rows = (list) => list.map((c) => { const tr = el("tr"); tr.append(el("td", c.key, "addr"), el("td", c.count, "n")); return tr; });
    replace($("top-addr").tBodies[0], rows(top.addresses));
    replace($("top-net").tBodies[0], rows(top.networks));
  }

  async function get(path) {
    const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }
  async function poll() {
    try {
      const [s, b, e, t] = await Promise.all([get("/api/summary"), get("/api/bans"), get("/api/events"), get("/api/top")]);
      drawSummary(s);
      bans = b;
      drawBans();
      drawEvents(e, t);
      $("live").textContent = "live";
      $("live").className = "live on";
    } catch (err) {
      $("live").textContent = "offline";
      $("live").className = "live";
    }
  }

  $("search").addEventListener("input", drawBans);
  document.querySelectorAll("#bans th[data-key]").forEach((th) => th.addEventListener("click", () => {
    const k = th.dataset.key;
    sortDir = sortKey === k ? -sortDir : 1;
    sortKey = k;
    document.querySelectorAll("#bans th").forEach((h) => h.classList.remove("asc", "desc"));
    th.classList.add(sortDir > 0 ? "asc" : "desc");
    drawBans();
  }));
  poll();
  setInterval(poll, 2000);
})();
