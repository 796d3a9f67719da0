// Watchword admin console. Served by us (script-src 'self'); no inline script anywhere.
"use strict";
document.addEventListener("submit", function (event) {
  // One click, one request: a second click on a slow form would send it twice.
  var form = event.target;
  if (form.dataset.submitted === "1") { event.preventDefault(); return; }
  form.dataset.submitted = "1";
});
