// Keeps an issue's page true while its status can change by itself (scheduled,
// sending, paused): the progress bar and counts follow the send, and when the status
// changes the page is loaded again, without the notice of what was done before.
// Without this script the page still works: reload it.
"use strict";
(function () {
  var state = document.getElementById("issue-state");
  if (!state) return;
  var shown = state.dataset.status;
  var bar = document.getElementById("progress");
  function update() {
    fetch(state.dataset.source, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (p) {
        if (!p) return setTimeout(update, 5000);
        if (p.status !== shown) {
          window.location.replace(window.location.pathname);
          return;
        }
        if (bar) {
          bar.max = Math.max(p.recipients, 1);
          bar.value = p.recipients - p.pending;
          bar.textContent = (p.recipients - p.pending) + " of " + p.recipients;
          ["sent", "failed", "pending"].forEach(function (key) {
            document.getElementById("count-" + key).textContent = p[key];
          });
        }
        setTimeout(update, 2000);
      })
      .catch(function () { setTimeout(update, 5000); });
  }
  setTimeout(update, 2000);
})();
