// Shared by the live troubleshooters (delivery.js, troubleshoot.js): DOM
// helpers, one step's rendering, the list of steps as start/step events
// arrive, and reading a server-sent event stream with fetch (not
// EventSource, which would reconnect and run the test again, and cannot
// show why a run was refused). Everything is built with textContent:
// nothing from the network is parsed as HTML.
(function () {
  "use strict";
  var words = { ok: "OK", warn: "WARN", fail: "FAIL", info: "INFO", skip: "SKIP" };

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

  // stepItem renders one step. opts.metaID adds the step's id to its
  // meta line; opts.detail(li, st) may render the detail itself and
  // return true; opts.after(li, st) adds more before the fix.
  function stepItem(st, isRunning, opts) {
    opts = opts || {};
    var s = isRunning ? "running" : st.status;
    var li = el("li", "step s-" + s);
    li.dataset.id = st.id;
    li.dataset.status = s;
    var head = el("div", "step-head");
    head.appendChild(el("span", "badge", isRunning ? "RUN" : (words[s] || s.toUpperCase())));
    head.appendChild(el("span", "step-title", st.title + (isRunning ? " …" : "")));
    var meta = [];
    if (opts.metaID && !isRunning) meta.push(st.id);
    if (st.host) meta.push(st.host);
    if (st.ip) meta.push(st.ip);
    if (!isRunning && typeof st.elapsed_ms === "number" && st.elapsed_ms > 0) meta.push(elapsed(st.elapsed_ms));
    if (meta.length) head.appendChild(el("span", "step-meta", meta.join(" · ")));
    li.appendChild(head);
    if (isRunning) return li;
    if (!(opts.detail && opts.detail(li, st)) && st.detail) li.appendChild(el("p", "step-detail", st.detail));
    if (opts.after) opts.after(li, st);
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

  // steps keeps list in step with the stream: a start event shows a
  // running step, its step event replaces it; onResult gets the result.
  function steps(list, opts, onResult) {
    var running = null;
    return {
      reset: function () { running = null; list.replaceChildren(); },
      onEvent: function (name, data) {
        var v;
        try { v = JSON.parse(data); } catch (e) { return; }
        if (name === "start") {
          if (running) running.remove();
          running = stepItem(v, true, opts);
          list.appendChild(running);
        } else if (name === "step") {
          var li = stepItem(v, false, opts);
          if (running && running.dataset.id === v.id) { list.replaceChild(li, running); running = null; }
          else list.appendChild(li);
        } else if (name === "result") {
          if (running) { running.remove(); running = null; }
          list.querySelectorAll(".s-running").forEach(function (x) { x.remove(); });
          onResult(v);
        }
      }
    };
  }

  // run fetches url with init and feeds its event stream to onEvent;
  // finish gets the line to show when it ends, is refused or fails.
  function run(url, init, onEvent, finish) {
    var started = Date.now();
    init.credentials = "same-origin";
    init.headers = { Accept: "text/event-stream" };
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
    return fetch(url, init).then(function (resp) {
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
  }

  window.mxray = { words: words, el: el, elapsed: elapsed, stepItem: stepItem, steps: steps, run: run };
})();
