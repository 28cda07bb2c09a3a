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
// Lists: a header box selects every row box bound to the same bulk form; the bar counts them.
(function () {
  "use strict";
  function boxes(formId) {
    return document.querySelectorAll('input[type=checkbox][name=ids][form="' + formId + '"]');
  }
  function count(formId) {
    var n = 0;
    boxes(formId).forEach(function (b) { if (b.checked) { n += 1; } });
    document.querySelectorAll('[data-selected-count="' + formId + '"]').forEach(function (el) {
      el.textContent = n ? String(n) + " \u2713" : "";
    });
  }
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (!t || t.type !== "checkbox") { return; }
    var all = t.getAttribute("data-select-all");
    if (all) {
      boxes(all).forEach(function (b) { b.checked = t.checked; });
      count(all);
    } else if (t.name === "ids" && t.getAttribute("form")) {
      count(t.getAttribute("form"));
    }
  });
})();
// Tabs: <nav data-tabs data-current="key"> with <a data-tab-link="key" href="#key"> links and
// <section class="tabpanel" id="key"> panels. Without this file every panel shows, one after another.
(function () {
  "use strict";
  document.querySelectorAll("nav[data-tabs]").forEach(function (nav) {
    var links = Array.prototype.slice.call(nav.querySelectorAll("a[data-tab-link]"));
    var keys = links.map(function (a) { return a.getAttribute("data-tab-link"); });
    function show(key) {
      if (keys.indexOf(key) < 0) { return false; }
      keys.forEach(function (k) {
        var panel = document.getElementById(k);
        if (panel) { panel.hidden = k !== key; }
      });
      links.forEach(function (a) {
        var on = a.getAttribute("data-tab-link") === key;
        a.classList.toggle("current", on);
        if (on) { a.setAttribute("aria-current", "true"); } else { a.removeAttribute("aria-current"); }
      });
      return true;
    }
    var fromHash = window.location.hash.replace(/^#/, "");
    if (!show(fromHash)) { show(nav.getAttribute("data-current")) || show(keys[0]); }
    document.addEventListener("click", function (ev) {
      var a = ev.target.closest && ev.target.closest("a[data-tab-link]");
      if (!a || !show(a.getAttribute("data-tab-link"))) { return; }
      ev.preventDefault();
      window.history.replaceState(null, "", "#" + a.getAttribute("data-tab-link"));
    });
  });
})();
// Notifications (inbox/): the header's bell shows the unread count, asked every
// data-poll-seconds (default 15) while the page is visible; a list with data-inbox-live="URL"
// (the notifications page) swaps in its fresh rows when the count changes. Same origin only.
(function () {
  "use strict";
  var bell = document.querySelector("[data-inbox-bell]");
  if (!bell || !window.fetch) { return; }
  var badge = bell.querySelector("[data-inbox-count]");
  var live = document.querySelector("[data-inbox-live]");
  var seconds = parseFloat(bell.getAttribute("data-poll-seconds") || "15");
  var last = null, label = bell.getAttribute("aria-label") || "";
  function show(n) {
    badge.textContent = n > 99 ? "99+" : String(n);
    badge.hidden = n === 0;
    bell.setAttribute("data-unread", String(n));
    bell.setAttribute("aria-label", n ? label + " (" + n + ")" : label);
  }
  function refreshList() {
    fetch(live.getAttribute("data-inbox-live"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; } })
      .catch(function () {});
  }
  function poll() {
    if (document.hidden) { return; }
    fetch("/inbox/unread", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || typeof data.unread !== "number") { return; }
        if (live && last !== null && data.unread !== last) { refreshList(); }
        last = data.unread;
        show(data.unread);
      })
      .catch(function () {});
  }
  poll();
  window.setInterval(poll, Math.max(1, seconds) * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
})();
