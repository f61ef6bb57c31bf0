// The issue editor's images, without leaving the page: uploading or picking an image
// puts its Markdown where the cursor is in the body (unsaved changes are kept), and
// says so. Without this script the forms still work: the image is added at the end of
// the body and the page is loaded again.
"use strict";
(function () {
  var body = document.getElementById("body_markdown");
  var status = document.getElementById("image-status");
  if (!body || !status) return;
  var cursor = body.value.length;
  body.addEventListener("blur", function () { cursor = body.selectionStart; });
  function say(text, problem) {
    status.textContent = "";
    var p = document.createElement("p");
    p.className = problem ? "error-message" : "notice";
    p.textContent = text;
    status.appendChild(p);
  }
  function insert(markdown) {
    var before = body.value.slice(0, cursor);
    var after = body.value.slice(cursor);
    var gapBefore = before === "" || /\n\n$/.test(before) ? "" : (/\n$/.test(before) ? "\n" : "\n\n");
    var gapAfter = /^\n/.test(after) || after === "" ? "\n" : "\n\n";
    body.value = before + gapBefore + markdown + gapAfter + after;
    cursor = (before + gapBefore + markdown).length;
    body.focus();
    body.setSelectionRange(cursor, cursor);
  }
  document.querySelectorAll("form.image-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      say("Adding the image\u2026", false);
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) {
          return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
        })
        .then(function (result) {
          button.disabled = false;
          if (!result.ok) {
            var errors = result.answer.errors || [];
            say(errors.length ? errors.map(function (e) { return e.message; }).join(" ") : (result.answer.error || "The image could not be added."), true);
            return;
          }
          insert(result.answer.markdown);
          form.reset();
          say("The image is in the body where the cursor was. Save to keep it.", false);
        })
        .catch(function () {
          button.disabled = false;
          say("The image could not be added: the connection failed. Try again.", true);
        });
    });
  });
})();

// The segment's count: as the choices of who it goes to change, the editor asks how
// many people they reach now and says so (politely, to screen readers too). Without
// this script the count shown is the saved segment's.
(function () {
  var segment = document.getElementById("segment");
  var reach = document.getElementById("reach");
  if (!segment || !reach) return;
  var timer = null;
  var asked = 0;
  function say(text, strong) {
    reach.textContent = "";
    if (strong) {
      reach.appendChild(document.createTextNode("It would reach "));
      var b = document.createElement("strong");
      b.textContent = strong;
      reach.appendChild(b);
      reach.appendChild(document.createTextNode(" if it went now."));
    } else {
      reach.textContent = text;
    }
  }
  function ask() {
    var fields = new URLSearchParams();
    segment.querySelectorAll("input, select").forEach(function (field) {
      if (field.type === "checkbox" && !field.checked) return;
      fields.append(field.name, field.value);
    });
    var mine = ++asked;
    fetch("/admin/reach?" + fields.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (mine !== asked) return; // a later change has asked again
        if (answer.error) say(answer.error, null);
        else say(null, answer.words);
      })
      .catch(function () {
        if (mine === asked) say("The count could not be fetched: the connection failed.", null);
      });
  }
  function changed() {
    clearTimeout(timer);
    timer = setTimeout(ask, 250);
  }
  segment.addEventListener("change", changed);
  segment.addEventListener("input", changed);
})();
