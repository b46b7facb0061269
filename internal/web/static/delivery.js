// The live delivery test: reads the server-sent event stream with fetch
// (not EventSource, which would reconnect and run the test again, and
// cannot show why a run was refused) and renders each step as it comes.
// Everything is built with textContent: nothing from the network is
// parsed as HTML.
(function () {
  "use strict";
  var form = document.getElementById("delivery-form");
  if (!form) return;
  var input = document.getElementById("target");
  var runBtn = document.getElementById("run");
  var stopBtn = document.getElementById("stop");
  var list = document.getElementById("steps");
  var status = document.getElementById("run-status");
  var verdictBox = document.getElementById("verdict-box");
  var words = { ok: "OK", warn: "WARN", fail: "FAIL", info: "INFO", skip: "SKIP" };
  var running = null, controller = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function elapsed(ms) {
    if (ms < 1) return Math.round(ms * 1000) + " µs";
    if (ms < 1000) return Math.round(ms) + " ms";
    return (ms / 1000).toFixed(1) + " s";
  }

  function stepItem(st, isRunning) {
    var s = isRunning ? "running" : st.status;
    var li = el("li", "step s-" + s);
    li.dataset.id = st.id;
    li.dataset.status = s;
    var head = el("div", "step-head");
    head.appendChild(el("span", "badge", isRunning ? "RUN" : (words[s] || s.toUpperCase())));
    head.appendChild(el("span", "step-title", st.title + (isRunning ? " …" : "")));
    var meta = [];
    if (st.host) meta.push(st.host);
    if (st.ip) meta.push(st.ip);
    if (!isRunning && typeof st.elapsed_ms === "number" && st.elapsed_ms > 0) meta.push(elapsed(st.elapsed_ms));
    if (meta.length) head.appendChild(el("span", "step-meta", meta.join(" · ")));
    li.appendChild(head);
    if (isRunning) return li;
    if (st.detail) li.appendChild(el("p", "step-detail", st.detail));
    if (st.hint) {
      var h = el("p", "step-hint");
      h.appendChild(el("strong", null, "Fix: "));
      h.appendChild(document.createTextNode(st.hint));
      li.appendChild(h);
    }
    if (st.rfc) li.appendChild(el("p", "step-rfc", "See " + st.rfc));
    if (st.transcript && st.transcript.length) {
      var d = el("details");
      d.appendChild(el("summary", null, "Transcript (" + st.transcript.length + " lines)"));
      d.appendChild(el("pre", null, st.transcript.join("\n")));
      li.appendChild(d);
    }
    return li;
  }

  function onEvent(name, data) {
    var v;
    try { v = JSON.parse(data); } catch (e) { return; }
    if (name === "start") {
      if (running) running.remove();
      running = stepItem(v, true);
      list.appendChild(running);
    } else if (name === "step") {
      var li = stepItem(v, false);
      if (running && running.dataset.id === v.id) { list.replaceChild(li, running); running = null; }
      else list.appendChild(li);
    } else if (name === "result") {
      if (running) { running.remove(); running = null; }
      showVerdict(v);
    }
  }

  function showVerdict(r) {
    var box = el("div", "card verdict v-" + r.verdict);
    box.id = "verdict";
    box.dataset.verdict = r.verdict;
    box.setAttribute("role", "status");
    var p = el("p");
    p.appendChild(el("strong", null, "Verdict: " + r.verdict));
    p.appendChild(document.createTextNode(" — " + r.reason));
    box.appendChild(p);
    var facts = "Recipient " + r.recipient;
    if (r.decided_by) facts += " · decided by step " + r.decided_by;
    if (r.decided_host) facts += " on " + r.decided_host + (r.decided_ip ? " (" + r.decided_ip + ")" : "");
    box.appendChild(el("p", "step-meta", facts));
    verdictBox.replaceChildren(box);
  }

  // parse feeds text to the SSE parser and returns what is left over.
  function parse(buf) {
    var cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      var block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      var name = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event: ") === 0) name = line.slice(7);
        else if (line.indexOf("data: ") === 0) data.push(line.slice(6));
      });
      if (data.length) onEvent(name, data.join("\n"));
    }
    return buf;
  }

  function finish(text) {
    status.textContent = text;
    runBtn.disabled = false;
    stopBtn.hidden = true;
    controller = null;
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var target = input.value.trim();
    if (!target || controller) return;
    list.replaceChildren();
    verdictBox.replaceChildren();
    running = null;
    runBtn.disabled = true;
    stopBtn.hidden = false;
    status.textContent = "Testing " + target + " …";
    history.replaceState(null, "", "?target=" + encodeURIComponent(target));
    controller = new AbortController();
    var started = Date.now();
    fetch(form.dataset.run + "?target=" + encodeURIComponent(target), {
      credentials: "same-origin", signal: controller.signal, headers: { Accept: "text/event-stream" }
    }).then(function (resp) {
      if (!resp.ok) {
        return resp.text().then(function (t) {
          if (resp.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); return; }
          finish("Refused (" + resp.status + "): " + t.trim());
        });
      }
      var reader = resp.body.getReader(), dec = new TextDecoder(), buf = "";
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) { parse(buf + "\n\n"); finish("Finished in " + elapsed(Date.now() - started) + "."); return; }
          buf = parse(buf + dec.decode(r.value, { stream: true }).replace(/\r\n?/g, "\n"));
          return pump();
        });
      }
      return pump();
    }).catch(function (e) {
      finish(e.name === "AbortError" ? "Stopped." : "The connection to mxray failed: " + e.message);
    });
  });

  stopBtn.addEventListener("click", function () { if (controller) controller.abort(); });
})();

// A report page's "Test delivery" link (?target=…&run=1) runs the test at
// once; only a link from mxray's own pages does (the Referrer-Policy is
// same-origin, so another site's link carries no referrer).
(function () {
  var q = new URLSearchParams(location.search);
  if (q.get("run") !== "1" || !q.get("target") || document.referrer.indexOf(location.origin + "/") !== 0) return;
  var form = document.getElementById("delivery-form");
  if (form) form.requestSubmit();
})();
