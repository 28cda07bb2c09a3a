// commonwatch: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  // The navigation's menu button on narrow screens (the CSS shows it only there).
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest(".navtoggle");
    if (!btn) { return; }
    var items = document.getElementById(btn.getAttribute("aria-controls"));
    var open = btn.getAttribute("aria-expanded") !== "true";
    btn.setAttribute("aria-expanded", open ? "true" : "false");
    if (items) { items.classList.toggle("open", open); }
  });
  // Ask before destructive submissions: <form data-confirm="...">.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
  // Live countdowns: <span class="countdown" data-deadline="ISO-8601" data-at-risk-seconds="N">.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-deadline"));
      if (isNaN(due)) { return; }
      var left = Math.round((due - now) / 1000), sign = left < 0 ? "-" : "";
      var s = Math.abs(left), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
      var m = Math.floor((s % 3600) / 60), sec = s % 60;
      el.textContent = sign + (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(sec);
      var risk = parseInt(el.getAttribute("data-at-risk-seconds") || "0", 10);
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("at-risk", left >= 0 && left <= risk);
    });
  }
  tick();
  window.setInterval(tick, 1000);
})();
