// Keeps an issue's progress bar current while it sends, and reloads the page when
// the send ends (to show the report). Without this script the page still works.
"use strict";
(function () {
  var bar = document.getElementById("progress");
  if (!bar) return;
  function update() {
    fetch(bar.dataset.source, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (p) {
        if (!p) return;
        bar.max = Math.max(p.recipients, 1);
        bar.value = p.recipients - p.pending;
        bar.textContent = (p.recipients - p.pending) + " of " + p.recipients;
        ["sent", "failed", "pending"].forEach(function (key) {
          document.getElementById("count-" + key).textContent = p[key];
        });
        if (p.status === "sending" || p.status === "paused") {
          setTimeout(update, 2000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { setTimeout(update, 5000); });
  }
  setTimeout(update, 2000);
})();
