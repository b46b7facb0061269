// The live delivery test: runs the test as an event stream (stream.js)
// and shows each step as it comes, then the verdict.
(function () {
  "use strict";
  var form = document.getElementById("delivery-form");
  if (!form || !window.mxray) return;
  var ui = window.mxray, el = ui.el;
  var input = document.getElementById("target");
  var runBtn = document.getElementById("run");
  var stopBtn = document.getElementById("stop");
  var status = document.getElementById("run-status");
  var verdictBox = document.getElementById("verdict-box");
  var controller = null;

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

  var list = ui.steps(document.getElementById("steps"), {}, showVerdict);

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
    list.reset();
    verdictBox.replaceChildren();
    runBtn.disabled = true;
    stopBtn.hidden = false;
    status.textContent = "Testing " + target + " …";
    history.replaceState(null, "", "?target=" + encodeURIComponent(target));
    controller = new AbortController();
    ui.run(form.dataset.run + "?target=" + encodeURIComponent(target), { signal: controller.signal }, list.onEvent, finish);
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
