// Protected users: follow a running directory sync by polling its JSON progress (no inline script: CSP).
// Without JavaScript the page refreshes itself instead (a <noscript> meta refresh).
"use strict";
(function () {
  var box = document.getElementById("sync-progress");
  if (!box) { return; }
  var RUNNING = ["running", "running_elsewhere"];
  var sawRunning = RUNNING.indexOf(box.dataset.status) >= 0;
  if (!sawRunning) { return; }

  function bar() {
    var el = document.getElementById("sync-bar");
    if (!el) {
      el = document.createElement("progress");
      el.id = "sync-bar";
      el.max = 100;
      box.insertBefore(el, box.firstChild);
    }
    return el;
  }

  function show(p) {
    box.dataset.status = p.status;
    box.className = "sync-progress sync-" + p.status;
    document.getElementById("sync-summary").textContent = p.summary;
    var el = bar();
    if (typeof p.percent === "number") { el.value = p.percent; el.textContent = p.percent + "%"; }
    else { el.removeAttribute("value"); }
  }

  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (p) {
        show(p);
        if (RUNNING.indexOf(p.status) >= 0) { window.setTimeout(poll, 1000); }
        else { window.location.reload(); } // the sync finished: show the new list
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
