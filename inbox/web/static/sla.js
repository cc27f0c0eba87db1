/* SLA countdowns: every element with data-sla-due shows the time left (or overdue) and turns
   amber with data-sla-warn seconds left and red once due. The server paints the first state;
   this keeps it current between live updates, and again after every htmx swap. */
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  var rtf = null;
  try { rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "short" }); } catch (e) { rtf = null; }

  function parts(seconds) {
    var abs = Math.abs(seconds);
    if (abs < 3600) return [Math.round(seconds / 60), "minute"];
    if (abs < 86400 * 2) return [Math.round(seconds / 3600), "hour"];
    return [Math.round(seconds / 86400), "day"];
  }

  function relative(seconds) {  /* "in 25 min." while time is left */
    var p = parts(seconds);
    return rtf ? rtf.format(p[0], p[1]) : String(p[0]) + " " + p[1];
  }

  function overdue(seconds) {  /* "25 min" past the due time (the label already says "Overdue") */
    var p = parts(-seconds);
    try {
      return new Intl.NumberFormat(lang, { style: "unit", unit: p[1], unitDisplay: "short" }).format(p[0]);
    } catch (e) { return String(p[0]) + " " + p[1]; }
  }

  function tick() {
    var now = Date.now();
    var nodes = document.querySelectorAll("[data-sla-due]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var due = Date.parse(el.getAttribute("data-sla-due"));
      if (isNaN(due)) continue;
      var warn = parseInt(el.getAttribute("data-sla-warn") || "1800", 10);
      var left = (due - now) / 1000;
      var state = left <= 0 ? "breached" : (left <= warn ? "warn" : "ok");
      el.classList.remove("sla-ok", "sla-warn", "sla-breached");
      el.classList.add("sla-" + state);
      el.setAttribute("data-sla-state", state);
      var label = el.querySelector(".sla-label");
      if (label) label.textContent = el.getAttribute(state === "breached" ? "data-label-late" : "data-label-due") || "";
      var time = el.querySelector(".sla-left");
      if (time) time.textContent = left <= 0 ? overdue(left) : relative(left);
    }
  }

  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  window.setInterval(tick, 15000);
  window.shopdeskSlaTick = tick;
})();

/* Macros: "m" opens the conversation's macro menu; the next key applies the macro with that
   shortcut (data-macro-key). Keys typed into fields are left alone. */
(function () {
  "use strict";
  var armed = 0;
  function typing(t) {
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    var menu = document.getElementById("macros-menu");
    if (!menu) return;
    if (armed && Date.now() - armed < 3000) {
      armed = 0;
      var button = menu.querySelector('[data-macro-key="' + (e.key || "").toLowerCase().replace(/["\\]/g, "") + '"]');
      menu.open = false;
      if (button && button.form) {
        e.preventDefault();
        e.stopImmediatePropagation();
        if (button.form.requestSubmit) button.form.requestSubmit(button); else button.form.submit();
      }
      return;
    }
    if (e.key === "m") {
      armed = Date.now();
      menu.open = true;
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
})();
