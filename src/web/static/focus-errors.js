// A form sent back with errors puts the focus on its error summary (the GOV.UK
// pattern), so a screen reader reads it and the keyboard starts from it. Without this
// script the summary is still first on the page, and announced as an alert.
"use strict";
(function () {
  var summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
})();
