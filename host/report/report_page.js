/* report_page.js — draws the armo report's charts as inline SVG from the
   JSON block #armo-data, and shows one record on demand.  Every text from
   the data goes into the page through textContent / setAttribute, never as
   markup.  On success <body data-ready="1">; an uncaught error sets
   <body data-error="..."> (the browser tests read both). */
"use strict";
window.addEventListener("error", function (ev) {
  document.body.setAttribute("data-error", String(ev.message) + " (line " + ev.lineno + ")");
});
(function () {
  const D = JSON.parse(document.getElementById("armo-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const OBJ = D.objectives;
  const byI = new Map(), byId = new Map();
  D.details.forEach(function (d) {
    byI.set(d.i, d);
    if (d.id !== null && !byId.has(d.id)) byId.set(d.id, d);
  });

  function add(parent, tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function html(parent, tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function svg(host, w, h, label) {
    const s = document.createElementNS(NS, "svg");
    s.setAttribute("viewBox", "0 0 " + w + " " + h);
    s.setAttribute("width", w);
    s.setAttribute("height", h);
    s.setAttribute("role", "img");
    s.setAttribute("aria-label", label);
    host.appendChild(s);
    return s;
  }
  function ticks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const span = hi - lo;
    let step = Math.pow(10, Math.floor(Math.log10(span / n)));
    const err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  function fmt(v) {
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 10000 || a < 0.001) return v.toExponential(1);
    return String(+v.toPrecision(3));
  }
  function short(s, n) {
    s = s === null ? "(no id)" : String(s);
    return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
  }
  function range(vals, pad) {
    let lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    if (!(hi > lo)) { lo -= pad; hi += pad; }
    return [lo, hi];
  }

  /* value axis along x at the bottom, with gridlines; title below */
  function xAxis(s, X, lo, hi, top, bottom, w, m, label) {
    ticks(lo, hi, 8).forEach(function (t) {
      add(s, "line", {class: "gridline", x1: X(t), x2: X(t), y1: top, y2: bottom});
      add(s, "line", {class: "tick", x1: X(t), x2: X(t), y1: bottom, y2: bottom + 5});
      add(s, "text", {x: X(t), y: bottom + 17, "text-anchor": "middle"}, fmt(t));
    });
    add(s, "line", {class: "axis", x1: m.l, x2: w - m.r, y1: bottom, y2: bottom});
    add(s, "text", {x: (m.l + w - m.r) / 2, y: bottom + 34, "text-anchor": "middle", class: "muted"}, label);
  }

  /* counts over value bins: x = value, y = count */
  function histogram(id, hist, xlabel, ylabel, zeroLine) {
    const host = document.getElementById(id);
    if (!host || !hist || !hist.counts.length) return;
    let lo = hist.lo, hi = hist.hi, counts = hist.counts.slice();
    const n = counts.length;
    if (!(hi > lo)) {               /* one value: a single bar in the middle */
      const tot = counts.reduce(function (a, b) { return a + b; }, 0);
      counts = counts.map(function () { return 0; });
      counts[Math.floor(n / 2)] = tot;
      lo -= 0.5; hi += 0.5;
    }
    const w = 720, h = 250, m = {l: 62, r: 16, t: 10, b: 46};
    const maxc = Math.max.apply(null, counts.concat([1]));
    const s = svg(host, w, h, xlabel + " histogram");
    const X = function (v) { return m.l + (v - lo) / (hi - lo) * (w - m.l - m.r); };
    const Y = function (c) { return h - m.b - c / maxc * (h - m.t - m.b); };
    ticks(0, maxc, 5).forEach(function (t) {
      add(s, "line", {class: "gridline", x1: m.l, x2: w - m.r, y1: Y(t), y2: Y(t)});
      add(s, "text", {x: m.l - 6, y: Y(t) + 4, "text-anchor": "end"}, fmt(t));
    });
    add(s, "line", {class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: h - m.b});
    xAxis(s, X, lo, hi, h - m.b, h - m.b, w, m, xlabel);
    const bw = (hi - lo) / n;
    counts.forEach(function (c, i) {
      if (!c) return;
      const x0 = X(lo + i * bw), x1 = X(lo + (i + 1) * bw);
      const r = add(s, "rect", {class: "bar", x: x0 + 0.5, y: Y(c), width: Math.max(1, x1 - x0 - 1),
                                height: Y(0) - Y(c)});
      add(r, "title", {}, fmt(lo + i * bw) + " to " + fmt(lo + (i + 1) * bw) + ": " + c);
    });
    if (zeroLine && lo < 0 && hi > 0)
      add(s, "line", {class: "med", x1: X(0), x2: X(0), y1: m.t, y2: h - m.b});
    add(s, "text", {x: 14, y: (m.t + h - m.b) / 2, "text-anchor": "middle", class: "muted",
                    transform: "rotate(-90 14 " + (m.t + h - m.b) / 2 + ")"}, ylabel);
  }

  /* one row per category, a value axis along x */
  function rows(id, names, lo, hi, xlabel, draw, rowh) {
    const host = document.getElementById(id);
    if (!host) return null;
    rowh = rowh || 20;
    const w = 780, m = {l: 250, r: 24, t: 6, b: 46}, h = m.t + m.b + rowh * names.length;
    const s = svg(host, w, h, xlabel);
    const X = function (v) { return m.l + (v - lo) / (hi - lo) * (w - m.l - m.r); };
    xAxis(s, X, lo, hi, m.t, h - m.b, w, m, xlabel);
    names.forEach(function (nm, i) {
      const y = m.t + i * rowh;
      add(s, "text", {x: m.l - 8, y: y + rowh / 2 + 4, "text-anchor": "end"}, short(nm, 40));
      draw(s, X, y, rowh, i);
    });
    add(s, "line", {class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: h - m.b});
    return s;
  }

  function boxes() {
    const B = D.rewardBox;
    if (!B.length) return;
    const r = range(B.map(function (b) { return b.min; }).concat(B.map(function (b) { return b.max; })), 1);
    rows("chart-boxes", OBJ, r[0], r[1], "reward (the objective's regression output)", function (s, X, y, rh, i) {
      const b = B[i], mid = y + rh / 2;
      add(s, "line", {class: "whisk", x1: X(b.min), x2: X(b.max), y1: mid, y2: mid});
      const bx = add(s, "rect", {class: "box", x: X(b.q1), y: y + 3, width: Math.max(1, X(b.q3) - X(b.q1)), height: rh - 6});
      add(bx, "title", {}, OBJ[i] + ": min " + fmt(b.min) + ", q1 " + fmt(b.q1) + ", median " +
          fmt(b.median) + ", q3 " + fmt(b.q3) + ", max " + fmt(b.max) + ", mean " + fmt(b.mean));
      add(s, "line", {class: "med", x1: X(b.median), x2: X(b.median), y1: y + 3, y2: y + rh - 3});
      add(s, "circle", {class: "dot", cx: X(b.mean), cy: mid, r: 2.5});
    });
  }

  /* signed horizontal bars from zero */
  function signedBars(id, names, vals, xlabel, unit) {
    if (!vals.length) return;
    const r = range(vals.concat([0]), 1);
    rows(id, names, r[0], r[1], xlabel, function (s, X, y, rh, i) {
      const v = vals[i], x0 = X(Math.min(0, v)), x1 = X(Math.max(0, v));
      const b = add(s, "rect", {class: v >= 0 ? "bar" : "neg", x: x0, y: y + 3, width: Math.max(1, x1 - x0), height: rh - 6});
      add(b, "title", {}, names[i] + ": " + fmt(v) + unit);
    });
  }

  function profile() {
    const W = D.winReward, O = D.otherReward;
    if (!W.length || !document.getElementById("chart-profile")) return;
    const r = range(W.concat(O).concat([0]), 1);
    const s = rows("chart-profile", OBJ, r[0], r[1], "mean reward", function (s, X, y, rh, i) {
      [[W[i], "bar2", "winner"], [O[i], "bar", "the others"]].forEach(function (p, k) {
        const x0 = X(Math.min(0, p[0])), x1 = X(Math.max(0, p[0]));
        const b = add(s, "rect", {class: p[1], x: x0, y: y + 2 + k * (rh - 4) / 2, width: Math.max(1, x1 - x0), height: (rh - 4) / 2});
        add(b, "title", {}, OBJ[i] + ", " + p[2] + ": " + fmt(p[0]));
      });
    }, 22);
    if (!s) return;
    add(s, "rect", {class: "bar2", x: 600, y: s.viewBox.baseVal.height - 12, width: 10, height: 10});
    add(s, "text", {x: 614, y: s.viewBox.baseVal.height - 3}, "winner");
    add(s, "rect", {class: "bar", x: 670, y: s.viewBox.baseVal.height - 12, width: 10, height: 10});
    add(s, "text", {x: 684, y: s.viewBox.baseVal.height - 3}, "the others");
  }

  function groupRates() {
    const G = D.summary.preference.groups;
    if (!G.length) return;
    const s = rows("chart-groups", G.map(function (g) { return g.name; }), 0, 100,
                   "chosen preferred, % of the group's pairs", function (s, X, y, rh, i) {
      const b = add(s, "rect", {class: "bar", x: X(0), y: y + 3, width: Math.max(1, X(100 * G[i].rate) - X(0)), height: rh - 6});
      add(b, "title", {}, G[i].name + ": " + (100 * G[i].rate).toFixed(2) + " % of " + G[i].pairs + " pairs");
    });
    if (!s) return;
    const x50 = 250 + 0.5 * (780 - 250 - 24);
    add(s, "line", {class: "conn", x1: x50, x2: x50, y1: 6, y2: s.viewBox.baseVal.height - 46});
  }

  function heatmap() {
    const host = document.getElementById("chart-heatmap");
    if (!host || !D.heatmap.length) return;
    const k = OBJ.length, cw = 24, ch = 14, m = {l: 190, t: 210, r: 90, b: 10};
    const w = m.l + k * cw + m.r, h = m.t + D.heatmap.length * ch + m.b;
    const s = svg(host, w, h, "gating heatmap");
    let max = 0;
    D.heatmapGates.forEach(function (g) { (g || []).forEach(function (v) { max = Math.max(max, v); }); });
    if (!(max > 0)) max = 1;
    OBJ.forEach(function (nm, j) {
      const x = m.l + j * cw + cw / 2;
      add(s, "text", {x: x, y: m.t - 6, transform: "rotate(-60 " + x + " " + (m.t - 6) + ")"}, short(nm, 34));
    });
    D.heatmap.forEach(function (ri, r) {
      const d = byI.get(ri), g = D.heatmapGates[r] || [], y = m.t + r * ch;
      const row = add(s, "g", {class: "row", "data-i": ri, style: "cursor:pointer"});
      add(row, "text", {x: m.l - 6, y: y + ch - 3, "text-anchor": "end"}, short(d ? d.id : null, 28));
      g.forEach(function (v, j) {
        add(row, "rect", {class: "cellbg", x: m.l + j * cw, y: y, width: cw - 1, height: ch - 1});
        const c = add(row, "rect", {class: "cell", x: m.l + j * cw, y: y, width: cw - 1, height: ch - 1,
                                    "fill-opacity": (v / max).toFixed(3)});
        add(c, "title", {}, short(d ? d.id : null, 60) + " \u00b7 " + OBJ[j] + ": " + fmt(v));
      });
      row.addEventListener("click", function () { showRecord(ri, true); });
    });
    const lx = m.l + k * cw + 14;
    for (let i = 0; i < 10; i++)
      add(s, "rect", {class: "cell", x: lx, y: m.t + i * 12, width: 14, height: 12, "fill-opacity": ((10 - i) / 10).toFixed(2)});
    add(s, "text", {x: lx + 18, y: m.t + 9}, fmt(max));
    add(s, "text", {x: lx + 18, y: m.t + 120}, "0");
    add(s, "text", {x: lx, y: m.t - 8, class: "muted"}, "gate");
  }

  /* the objective terms of a pair, cumulated from 0 to the margin */
  function waterfall(host, d) {
    host.textContent = "";
    if (!d || !d.terms) return;
    const order = d.terms.map(function (t, j) { return j; })
      .sort(function (a, b) { return Math.abs(d.terms[b]) - Math.abs(d.terms[a]); });
    let cum = 0;
    const spans = order.map(function (j) { const a = cum; cum += d.terms[j]; return [a, cum]; });
    const all = [0, cum];
    spans.forEach(function (p) { all.push(p[0], p[1]); });
    const r = range(all, 0.5);
    html(host, "p", "", "pair " + short(d.id, 80) + " (line " + d.line + "): margin " +
         fmt(d.margin === null || d.margin === undefined ? cum : d.margin) +
         "; objectives by the size of their term");
    const names = order.map(function (j) { return OBJ[j]; }).concat(["margin (sum)"]);
    const wrap = html(host, "div");
    wrap.id = host.id + "-svg";
    rows(wrap.id, names, r[0], r[1], "score difference (chosen − rejected)", function (s, X, y, rh, i) {
      if (i === order.length) {
        add(s, "rect", {class: cum >= 0 ? "pos" : "neg", x: X(Math.min(0, cum)), y: y + 3,
                        width: Math.max(1, Math.abs(X(cum) - X(0))), height: rh - 6});
        return;
      }
      const p = spans[i], t = d.terms[order[i]];
      const b = add(s, "rect", {class: t >= 0 ? "pos" : "neg", x: X(Math.min(p[0], p[1])), y: y + 3,
                                width: Math.max(1, Math.abs(X(p[1]) - X(p[0]))), height: rh - 6});
      add(b, "title", {}, OBJ[order[i]] + ": " + fmt(t));
      add(s, "line", {class: "conn", x1: X(p[1]), x2: X(p[1]), y1: y + rh - 3, y2: y + rh + 3});
    });
  }

  function cell(tr, text, cls) { const td = html(tr, "td", cls, text); return td; }

  function recordTable(host, d) {
    const R = d.resp || [];
    if (!R.length || !R[0].r) return;
    const t = html(host, "table", "t");
    const hr = html(html(t, "thead"), "tr");
    ["objective", "gate", "coefficient"].forEach(function (x) { html(hr, "th", "", x); });
    R.forEach(function (x) { html(hr, "th", "", x.label + " reward"); html(hr, "th", "", x.label + " coef×reward"); });
    if (d.terms) html(hr, "th", "", "term (chosen − rejected)");
    const tb = html(t, "tbody");
    OBJ.forEach(function (nm, j) {
      const tr = html(tb, "tr");
      cell(tr, nm);
      cell(tr, R[0].g[j].toFixed(4), "n");
      cell(tr, R[0].c[j].toFixed(4), "n");
      R.forEach(function (x) {
        cell(tr, x.r[j].toFixed(4), "n");
        cell(tr, (x.c[j] * x.r[j]).toFixed(4), "n");
      });
      if (d.terms) cell(tr, d.terms[j].toFixed(4), "n");
    });
    const tr = html(tb, "tr");
    html(tr, "th", "", "score");
    cell(tr, ""); cell(tr, "");
    R.forEach(function (x) { cell(tr, ""); cell(tr, Number(x.score).toFixed(4), "n"); });
    if (d.terms) cell(tr, d.terms.reduce(function (a, b) { return a + b; }, 0).toFixed(4), "n");
  }

  function showRecord(i, scroll) {
    const host = document.getElementById("record-view");
    const d = byI.get(i);
    if (!host || !d) return;
    host.textContent = "";
    host.setAttribute("data-shown", String(d.i));
    const kind = {single: "single response", pair: "pair", bon: "best-of-N", error: "error"}[d.kind] || d.kind;
    html(host, "h3", "", "id " + (d.id === null ? "(none)" : d.id) + " \u2014 " + kind + ", line " + d.line);
    if (d.error !== undefined) html(host, "p", "note", "error: " + d.error);
    const R = d.resp || [];
    if (R.length) {
      const p = html(host, "p");
      p.textContent = R.map(function (x) {
        return x.label + ": score " + Number(x.score).toFixed(4) + (x.tokens !== null ? " (" + x.tokens + " tokens)" : "");
      }).join(" \u00b7 ") + (d.margin !== undefined && d.margin !== null ? " \u00b7 margin " + Number(d.margin).toFixed(4) : "") +
        (d.best !== undefined && d.best !== null ? " \u00b7 best: responses[" + d.best + "]" : "");
    }
    (d.conv || []).forEach(function (m) {
      const b = html(host, "div", "msgbox");
      html(b, "span", "role", m[0]);
      b.appendChild(document.createTextNode(m[1]));
    });
    (d.texts || []).forEach(function (t, k) {
      const b = html(host, "div", "msgbox");
      html(b, "span", "role", "assistant \u2014 " + (R[k] ? R[k].label : "response " + k));
      b.appendChild(document.createTextNode(t));
    });
    if (!d.conv) html(host, "p", "muted", "(conversation not shown: run armo report with --input RECORDS.jsonl)");
    recordTable(host, d);
    if (d.terms) { const w = html(host, "div"); w.id = "record-waterfall"; waterfall(w, d); }
    if (scroll) host.scrollIntoView();
  }

  function search() {
    const inp = document.getElementById("rec-search"), msg = document.getElementById("rec-msg");
    if (!inp) return;
    const dl = document.getElementById("rec-ids");
    D.details.slice(0, 5000).forEach(function (d) {
      if (d.id === null) return;
      const o = document.createElement("option");
      o.value = d.id;
      dl.appendChild(o);
    });
    function go() {
      const d = byId.get(inp.value);
      msg.textContent = "";
      if (d) showRecord(d.i, false);
      else msg.textContent = "no record with id \u201c" + short(inp.value, 60) + "\u201d in this page";
    }
    document.getElementById("rec-go").addEventListener("click", go);
    inp.addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
  }

  const S = D.summary;
  if (S.responses > 0) histogram("chart-score", D.scoreHist, "score", "responses");
  boxes();
  signedBars("chart-share", OBJ, D.share.map(function (v) { return 100 * v; }),
             "share of the total score, % (Σ coefficient × reward)", " %");
  signedBars("chart-dominant", OBJ, D.dominant, "prompts whose largest gating weight is this objective", " prompts");
  heatmap();
  if (S.pairs > 0) histogram("chart-margin", D.marginHist, "margin (score units)", "pairs", true);
  groupRates();
  if (S.best_of_n > 0) histogram("chart-spread", D.spreadHist, "score spread (score units)", "prompts");
  profile();
  const wf = document.getElementById("chart-waterfall");
  if (wf && D.smallest.length) waterfall(wf, byI.get(D.smallest[0]));
  document.querySelectorAll("button.rec").forEach(function (b) {
    b.addEventListener("click", function () {
      const i = Number(b.getAttribute("data-i")), d = byI.get(i);
      if (wf && d && d.terms && b.closest("#smallest")) waterfall(wf, d);
      showRecord(i, !b.closest("#smallest"));
    });
  });
  search();
  const first = D.details.find(function (d) { return d.kind !== "error"; }) || D.details[0];
  if (first) showRecord(first.i, false);
  document.body.setAttribute("data-ready", "1");
})();
