// The DMARC, connection and domain troubleshooters: posts the form (with
// its CSRF token, and for DMARC the uploaded message) with fetch and reads
// the server-sent event stream of the answer, as delivery.js does, then
// renders the result event for the page's kind. Everything is built with
// textContent: nothing from the network is parsed as HTML.
(function () {
  "use strict";
  var form = document.querySelector("form.run-form");
  if (!form || !window.mxray) return;
  var kind = form.dataset.kind;
  var runBtn = document.getElementById("run");
  var stopBtn = document.getElementById("stop");
  var list = document.getElementById("steps");
  var status = document.getElementById("run-status");
  var resultBox = document.getElementById("result-box");
  var ui = window.mxray, el = ui.el, words = ui.words;
  var controller = null;

  function badge(s, text) { var b = el("span", "badge s-" + s, text || words[s] || String(s).toUpperCase()); return b; }

  // spfTree renders an SPF evaluation trace (a step's data.trace): one
  // node per record or term, includes and redirects folded open when
  // they matched or failed, with their DNS lookup counts.
  function spfTree(node) {
    var li = el("li", "trace-node");
    var head = (node.term || node.kind) + (node.domain && node.kind !== "record" ? " " + node.domain : "");
    if (node.kind === "record") head = node.domain + (node.record ? ": \"" + node.record + "\"" : "");
    var bits = [];
    if (node.result) bits.push("→ " + node.result);
    else if (node.skipped) bits.push("(not evaluated)");
    else if (node.matched) bits.push("→ matched");
    if (node.lookups) bits.push(node.lookups + " lookup" + (node.lookups === 1 ? "" : "s"));
    if (node.void_lookups) bits.push(node.void_lookups + " void");
    if (node.error) bits.push("(" + node.error + ")");
    var text = head + (bits.length ? "  " + bits.join(" · ") : "");
    var kids = node.children || [];
    if (!kids.length) { li.appendChild(el("span", "mono" + (node.matched ? " matched" : ""), text)); return li; }
    var d = el("details");
    if (node.kind === "record" || node.matched || node.error || node.result === "fail" || node.result === "permerror") d.open = true;
    d.appendChild(el("summary", "mono" + (node.matched ? " matched" : ""), text));
    var ul = el("ul", "trace");
    kids.forEach(function (k) { ul.appendChild(spfTree(k)); });
    d.appendChild(ul);
    li.appendChild(d);
    return li;
  }

  function table(cls, headers, rows) {
    var t = el("table", cls);
    var tr = el("tr");
    headers.forEach(function (h) { var th = el("th", null, h); th.scope = "col"; tr.appendChild(th); });
    var thead = el("thead"); thead.appendChild(tr); t.appendChild(thead);
    var tb = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c, i) {
        var td = el(i === 0 ? "th" : "td");
        if (i === 0) td.scope = "row";
        if (c && typeof c === "object" && c.nodeType) td.appendChild(c);
        else td.textContent = c === undefined || c === null ? "" : String(c);
        row.appendChild(td);
      });
      tb.appendChild(row);
    });
    t.appendChild(tb);
    return t;
  }

  // The hooks of stream.js's stepItem: the SPF trace replaces the text
  // tree of the detail, DKIM signatures get a table, and the domain
  // audit's many steps show their ids.
  var stepOpts = {
    metaID: kind === "domain",
    detail: function (li, st) {
      var data = st.data || {};
      if (!data.trace) return false;
      // The detail's lines up to the lookup count; the tree follows.
      var lines = (st.detail || "").split("\n"), first = [];
      for (var i = 0; i < lines.length; i++) { first.push(lines[i]); if (lines[i].indexOf("DNS lookups") === 0) break; }
      if (i < lines.length && first.length) li.appendChild(el("p", "step-detail", first.join("\n")));
      var ul = el("ul", "trace");
      ul.appendChild(spfTree(data.trace));
      li.appendChild(ul);
      return true;
    },
    after: function (li, st) {
      var data = st.data || {};
      if (st.id === "dkim" && data.signatures && data.signatures.length) {
        li.appendChild(table("sigs", ["d=", "s=", "a=", "result", "why"], data.signatures.map(function (g) {
          return [g.d || "?", g.s || "?", g.a || "", badge(g.status, g.result), g.detail || g.reason || ""];
        })));
      }
    }
  };

  var dmarcStatus = { pass: "ok", fail: "fail", none: "warn", temperror: "warn", permerror: "fail" };

  function showDMARC(r) {
    var d = r.dmarc || {};
    var box = el("section", "card result r-" + (dmarcStatus[d.result] || "info"));
    box.id = "dmarc-result";
    box.dataset.result = d.result;
    box.setAttribute("aria-label", "DMARC result");
    var p = el("p", "verdict-line");
    p.appendChild(el("strong", null, "DMARC " + d.result));
    var tail = " for " + (d.author_domain || r.from_domain || "?");
    if (d.policy) tail += " · policy " + d.policy + " → " + (d.disposition === "none" ? "deliver" : d.disposition);
    p.appendChild(document.createTextNode(tail));
    box.appendChild(p);
    if (r.from_source) box.appendChild(el("p", "step-meta", "From: domain taken from " + r.from_source));
    // Alignment side by side: the author domain against SPF's and each
    // DKIM signature's.
    var rows = [["From (author)", d.author_domain || r.from_domain, "", "", "organizational domain " + (d.organizational_domain || "?")]];
    function aligned(id) { return id.aligned ? "aligned" : "not aligned"; }
    if (d.spf) rows.push(["SPF", d.spf.domain || "—", badge(dmarcStatus[d.spf.result] || "info", d.spf.result), aligned(d.spf) + (d.spf.mode ? " (" + d.spf.mode + ")" : ""), d.spf.reason || ""]);
    (d.dkim || []).forEach(function (k) {
      rows.push(["DKIM", k.domain || "—", badge(dmarcStatus[k.result] || "info", k.result), aligned(k) + (k.mode ? " (" + k.mode + ")" : ""), k.reason || ""]);
    });
    if (!(d.dkim || []).length) rows.push(["DKIM", "—", badge("skip", (r.dkim && r.dkim.result) || "none"), "", (r.dkim && r.dkim.note) || "no signature"]);
    box.appendChild(table("align", ["", "domain", "result", "alignment", "why"], rows));
    (d.differences || []).forEach(function (x) { box.appendChild(el("p", "step-meta", "RFC 7489: " + (typeof x === "string" ? x : JSON.stringify(x)))); });
    var facts = el("dl", "facts");
    function fact(k, v) { facts.appendChild(el("dt", null, k)); facts.appendChild(el("dd", null, v)); }
    if (r.arc) fact("ARC", r.arc.result + (r.arc.note ? " — " + r.arc.note : "") + (r.arc.chain && r.arc.chain.n ? " (" + r.arc.chain.n + " sets)" : ""));
    if (r.iprev) fact("iprev", r.iprev.result + (r.iprev.ptr && r.iprev.ptr.length ? " — " + r.iprev.ptr.join(", ") : "") + (r.iprev.helo_note ? " — " + r.iprev.helo_note : ""));
    box.appendChild(facts);
    box.appendChild(el("p", "label", "Authentication-Results a receiver would add:"));
    var pre = el("pre", "auth-results", "Authentication-Results: " + r.authentication_results);
    pre.id = "auth-results";
    box.appendChild(pre);
    resultBox.replaceChildren(box);
  }

  function showProbe(r) {
    var box = el("section", "card result r-" + (r.status || "info"));
    box.id = "probe-result";
    box.dataset.status = r.status || "";
    var p = el("p", "verdict-line");
    p.appendChild(el("strong", null, r.host));
    if (r.addresses && r.addresses.length) p.appendChild(document.createTextNode(" (" + r.addresses.join(", ") + ")"));
    p.appendChild(document.createTextNode(" · " + (words[r.status] || r.status || "")));
    box.appendChild(p);
    if (r.unchecked) box.appendChild(el("p", "msg error", "Could not check: " + r.unchecked));
    var rows = (r.services || []).map(function (s) {
      var m = s.matrix || {};
      function cell(c) { c = c || { status: "skip", text: "-" }; var sp = el("span", "cell s-" + c.status); sp.textContent = (c.status === "fail" ? "✗ " : c.status === "warn" ? "! " : "") + c.text; sp.title = words[c.status] || c.status; return sp; }
      return [s.service + " (" + s.port + ")", cell(m.connect), cell(m.tls), cell(m.cert), cell(m.auth)];
    });
    var t = table("matrix", ["service", "connect", "TLS", "certificate", "auth"], rows);
    t.id = "probe-matrix";
    box.appendChild(t);
    box.appendChild(el("p", "note", "✗ = problem, ! = warning; the steps below say why."));
    resultBox.replaceChildren(box);
  }

  function showDomain(r) {
    var c = r.counts || {};
    var box = el("section", "card result r-" + (r.worst || "info"));
    box.id = "domain-result";
    box.dataset.worst = r.worst || "";
    var p = el("p", "verdict-line");
    p.appendChild(el("strong", null, "Domain audit of " + r.domain));
    p.appendChild(document.createTextNode(" — " + (c.fail || 0) + " fail, " + (c.warn || 0) + " warn, " + (c.ok || 0) + " ok, " + (c.info || 0) + " info"));
    box.appendChild(p);
    if (r.unchecked && r.unchecked.length) box.appendChild(el("p", "msg error", "DNS could not be checked: " + r.unchecked.join("; ")));
    resultBox.replaceChildren(box);
    // Findings grouped by severity, worst first.
    var items = Array.prototype.slice.call(list.children);
    var groups = [["fail", "Failures"], ["warn", "Warnings"], ["ok", "OK"], ["info", "Information"], ["skip", "Skipped"]];
    list.replaceChildren();
    groups.forEach(function (g) {
      var these = items.filter(function (li) { return li.dataset.status === g[0]; });
      if (!these.length) return;
      var h = el("li", "group-head", g[1] + " (" + these.length + ")");
      h.dataset.group = g[0];
      list.appendChild(h);
      these.forEach(function (li) { list.appendChild(li); });
    });
  }

  var steps = ui.steps(list, stepOpts, function (v) {
    if (kind === "dmarc") showDMARC(v);
    else if (kind === "connection") showProbe(v);
    else if (kind === "domain") showDomain(v);
  });

  function finish(text) {
    status.textContent = text;
    runBtn.disabled = false;
    stopBtn.hidden = true;
    controller = null;
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (controller) return;
    steps.reset();
    resultBox.replaceChildren();
    runBtn.disabled = true;
    stopBtn.hidden = false;
    status.textContent = "Running …";
    controller = new AbortController();
    ui.run(form.dataset.run, { method: "POST", body: new FormData(form), signal: controller.signal }, steps.onEvent, finish);
  });
  stopBtn.addEventListener("click", function () { if (controller) controller.abort(); });
})();
