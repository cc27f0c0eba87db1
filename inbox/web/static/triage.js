/* Shopdesk triage: live tab counts, bulk selection, notifications (see inbox/web/triage.py).
 *
 * - counts: after every live frame (inbox.js re-dispatches each /inbox/ws frame as the DOM event
 *   "shopdesk:live") the page re-reads GET /inbox/triage/state, so every tab of every agent shows
 *   the counts the server computes, never numbers patched here;
 * - bulk selection: row checkboxes, shift-click selects a range, "x" toggles the highlighted row
 *   (j/k move it); the selection keeps the state token each row had when it was selected, so
 *   the server refuses the change if someone changed a selected conversation meanwhile;
 * - notifications: new conversations in the agent's queues and customer replies in conversations
 *   assigned to them raise the unread count in the tab title, and, if switched on, a short sound
 *   and a desktop notification (permission asked when the switch is clicked);
 * - text built here uses textContent only; strings come from the page's JSON catalog (_("…")).
 */
(function () {
  "use strict";

  // the helpers inbox.js shares (it runs first: deferred scripts run in document order)
  var shared = window.shopdeskInbox;
  var _ = shared._, fmt = shared.fmt, $ = shared.$, $all = shared.$all, csrfToken = shared.csrfToken;
  var myAgentId = shared.myAgentId, currentConversationId = shared.currentConversationId;
  var toast = shared.toast, errorText = shared.errorText;

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() }
    }).then(function (r) {
      return r.text().then(function (text) { return { ok: r.ok, status: r.status, body: text }; });
    });
  }

  // ------------------------------------------------------------------ live counts

  var counts = null;       // the last counts read, view -> n
  var prefs = { sound: false, desktop: false };
  var stateTimer = null;
  var ownChangeUntil = 0;  // this tab just changed something: its own count changes are not news
  var QUEUES = ["human", "unassigned", "mine"];

  function applyCounts(fresh) {
    Object.keys(fresh).forEach(function (view) {
      $all('[data-count="' + view + '"]').forEach(function (el) { el.textContent = String(fresh[view]); });
    });
  }

  function loadState(notifyGrowth) {
    if (!document.getElementById("page")) { return; }
    fetch("/inbox/triage/state", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.counts) { return; }
        var previous = counts;
        counts = data.counts;
        prefs = data.prefs || prefs;
        applyCounts(counts);
        syncPrefs();
        if (notifyGrowth && previous && Date.now() > ownChangeUntil) {
          var grew = QUEUES.some(function (v) { return (counts[v] || 0) > (previous[v] || 0); });
          if (grew) { notify("queue", _("New conversation waiting"), _("A conversation is new in your views.")); }
        }
      })
      .catch(function () { /* the next frame retries */ });
  }

  function scheduleState(notifyGrowth) {
    if (stateTimer) { window.clearTimeout(stateTimer); }
    stateTimer = window.setTimeout(function () { stateTimer = null; loadState(notifyGrowth); }, 120);
  }

  document.addEventListener("shopdesk:live", function (e) {
    var frame = e.detail || {};
    if (frame.type === "presence" || frame.type === "pong") { return; }
    if (frame.type === "hello") { scheduleState(false); return; }  // (re)connected: catch up
    scheduleState(true);
    if (frame.type === "message.created" && frame.author === "customer" && frame.assignee_id === myAgentId()) {
      var looking = frame.conversation_id === currentConversationId() && document.visibilityState === "visible" && document.hasFocus();
      if (!looking) {
        notify("reply-" + frame.conversation_id + "-" + (frame.message_id || ""), _("New reply"),
          fmt(_("A customer replied in conversation #%(id)s."), { id: frame.conversation_id }), frame.conversation_id);
      }
    }
  });

  // ------------------------------------------------------------------ notifications

  var unread = 0;
  var audio = null;

  function baseTitle() { return document.title.replace(/^\(\d+\) /, ""); }

  function showUnread() {
    var title = baseTitle();
    document.title = unread > 0 ? "(" + unread + ") " + title : title;
  }

  function clearUnread() {
    if (unread === 0) { return; }
    unread = 0;
    showUnread();
  }

  // one tab makes the sound and the desktop notification for an event; every tab counts it
  function firstTab(key) {
    try {
      var name = "shopdesk-notified-" + key;
      var now = Date.now();
      var seen = parseInt(window.localStorage.getItem(name) || "0", 10);
      if (seen && now - seen < 10000) { return false; }
      window.localStorage.setItem(name, String(now));
      return true;
    } catch (e) { return true; }
  }

  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      audio = audio || new Ctx();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.08, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.25);
    } catch (e) { /* no sound, no harm */ }
  }

  function notify(key, title, body, conversationId) {
    unread += 1;
    showUnread();
    var page = document.getElementById("page");
    if (page) { page.setAttribute("data-notified", String(Number(page.getAttribute("data-notified") || "0") + 1)); }
    if (!firstTab(key)) { return; }
    if (prefs.sound) { beep(); }
    var away = document.visibilityState !== "visible" || !document.hasFocus();
    if (prefs.desktop && away && "Notification" in window && window.Notification.permission === "granted") {
      try {
        var n = new window.Notification(title, { body: body, tag: key });
        n.onclick = function () {
          window.focus();
          if (conversationId) { window.location.assign("/inbox/c/" + conversationId); }
          n.close();
        };
      } catch (e) { /* some browsers only allow notifications from a service worker */ }
    }
  }

  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") { clearUnread(); } });
  window.addEventListener("focus", clearUnread);
  document.addEventListener("pointerdown", clearUnread, true);
  document.addEventListener("keydown", clearUnread, true);

  var savingPrefs = 0;  // saves in flight: the boxes show the agent's clicks, not an older answer

  function syncPrefs() {
    if (savingPrefs > 0) { return; }
    var sound = document.getElementById("notify-sound");
    var desktop = document.getElementById("notify-desktop");
    if (sound) { sound.checked = !!prefs.sound; }
    if (desktop) {
      var blocked = !("Notification" in window) || window.Notification.permission === "denied";
      desktop.checked = !!prefs.desktop && !blocked;
    }
  }

  function prefState(text) {
    var el = document.getElementById("notify-state");
    if (!el) { return; }
    el.textContent = text || "";
    el.hidden = !text;
  }

  function savePrefs(changes) {
    var body = new URLSearchParams();
    Object.keys(changes).forEach(function (k) { body.append(k, changes[k] ? "1" : "0"); });
    savingPrefs += 1;
    post("/inbox/triage/prefs", body).then(function (res) {
      savingPrefs -= 1;
      if (!res.ok) { toast(errorText(res.body, res.status), true); loadState(false); return; }
      prefs = JSON.parse(res.body).prefs || prefs;
      syncPrefs();
    }).catch(function () { savingPrefs -= 1; toast(_("Cannot reach the server."), true); });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.id === "notify-sound") {
      if (t.checked) { beep(); }  // a click: the browser lets the page play sound from now on
      savePrefs({ notify_sound: t.checked });
    } else if (t.id === "notify-desktop") {
      if (!t.checked) { prefState(""); savePrefs({ notify_desktop: false }); return; }
      if (!("Notification" in window)) {
        t.checked = false;
        prefState(_("This browser cannot show desktop notifications."));
        return;
      }
      window.Notification.requestPermission().then(function (permission) {
        if (permission === "granted") {
          prefState("");
          savePrefs({ notify_desktop: true });
        } else {
          t.checked = false;
          prefState(_("Your browser blocks notifications from this site; allow them in its settings."));
          savePrefs({ notify_desktop: false });
        }
      });
    } else if (t.id === "bulk-op") {
      syncBulkArgs();
    } else if (t.id === "bulk-all") {
      checks().forEach(function (box) { setChecked(box, t.checked); });
      showSelection();
    }
  });

  // ------------------------------------------------------------------ bulk selection

  var selection = {};  // conversation id -> the state token when it was selected
  var lastClicked = null;

  function checks() { return $all(".conv-list .bulk-check"); }

  function rowOf(box) { return box.closest(".conv-item"); }

  function setChecked(box, on) {
    var row = rowOf(box);
    if (!row) { return; }
    var id = row.getAttribute("data-id");
    box.checked = on;
    row.classList.toggle("is-checked", on);
    if (on) {
      if (!Object.prototype.hasOwnProperty.call(selection, id)) { selection[id] = row.getAttribute("data-token") || ""; }
    } else {
      delete selection[id];
    }
  }

  function selectedCount() { return Object.keys(selection).length; }

  function showSelection() {
    var n = selectedCount();
    var label = document.getElementById("bulk-count");
    if (label) { label.textContent = n ? fmt(_("%(count)s selected"), { count: n }) : _("Select"); }
    var bar = document.getElementById("bulk-form");
    if (bar) { bar.classList.toggle("has-selection", n > 0); }
    var all = document.getElementById("bulk-all");
    var boxes = checks();
    if (all) {
      var on = boxes.filter(function (b) { return b.checked; }).length;
      all.checked = boxes.length > 0 && on === boxes.length;
      all.indeterminate = on > 0 && on < boxes.length;
    }
  }

  // a refreshed list (live update, navigation) keeps what was selected, with the tokens seen then
  function restoreSelection() {
    var ids = {};
    checks().forEach(function (box) {
      var row = rowOf(box);
      var id = row ? row.getAttribute("data-id") : null;
      if (id && Object.prototype.hasOwnProperty.call(selection, id)) {
        box.checked = true;
        row.classList.add("is-checked");
      }
      if (id) { ids[id] = true; }
    });
    showSelection();
  }

  function syncBulkArgs() {
    var op = document.getElementById("bulk-op");
    var value = op ? op.value : "";
    $all(".bulk-arg").forEach(function (el) {
      var wanted = (el.getAttribute("data-bulk-for") || "").split(" ");
      el.hidden = wanted.indexOf(value) < 0;
    });
  }

  document.addEventListener("click", function (e) {
    var box = e.target.closest ? e.target.closest(".bulk-check") : null;
    if (!box) { return; }
    var boxes = checks();
    var index = boxes.indexOf(box);
    if (e.shiftKey && lastClicked !== null && boxes[lastClicked]) {
      var from = Math.min(lastClicked, index);
      var to = Math.max(lastClicked, index);
      for (var i = from; i <= to; i++) { setChecked(boxes[i], box.checked); }
    } else {
      setChecked(box, box.checked);
    }
    lastClicked = index;
    showSelection();
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName || "");
    if (typing || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || e.key !== "x") { return; }
    var row = $(".conv-item.is-selected") || $(".conv-item");
    var box = row ? $(".bulk-check", row) : null;
    if (!box) { return; }
    e.preventDefault();
    if (!row.classList.contains("is-selected")) {
      $all(".conv-item.is-selected").forEach(function (el) { el.classList.remove("is-selected"); });
      row.classList.add("is-selected");
    }
    setChecked(box, !box.checked);
    lastClicked = checks().indexOf(box);
    showSelection();
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form || form.id !== "bulk-form") { return; }
    e.preventDefault();
    var op = document.getElementById("bulk-op");
    if (!selectedCount()) { toast(_("Select at least one conversation."), true); return; }
    if (!op || !op.value) { toast(_("Choose what to do with the selected conversations."), true); return; }
    var body = new URLSearchParams();
    new FormData(form).forEach(function (value, key) { if (key !== "c") { body.append(key, String(value)); } });
    Object.keys(selection).forEach(function (id) { body.append("c", id + ":" + selection[id]); });
    var apply = document.getElementById("bulk-apply");
    if (apply) { apply.disabled = true; }
    ownChangeUntil = Date.now() + 3000;
    post(form.getAttribute("action"), body).then(function (res) {
      if (apply) { apply.disabled = false; }
      if (!res.ok) { toast(errorText(res.body, res.status), true); return; }
      var n = JSON.parse(res.body).changed || 0;
      selection = {};
      checks().forEach(function (b) { b.checked = false; var r = rowOf(b); if (r) { r.classList.remove("is-checked"); } });
      showSelection();
      toast(fmt(_("%(count)s conversations updated."), { count: n }), false);
    }).catch(function () {
      if (apply) { apply.disabled = false; }
      toast(_("Cannot reach the server."), true);
    });
  });

  // this tab's own single changes (forms) are not news for its notifications either
  document.addEventListener("htmx:beforeRequest", function (e) {
    var verb = e.detail && e.detail.requestConfig ? String(e.detail.requestConfig.verb || "") : "";
    if (verb.toLowerCase() === "post") { ownChangeUntil = Date.now() + 3000; }
  });

  // ------------------------------------------------------------------ page life

  var observer = null;

  function watchList() {
    if (observer) { observer.disconnect(); }
    var pane = $(".pane-list");
    if (!pane || !window.MutationObserver) { return; }
    observer = new MutationObserver(function () { restoreSelection(); });
    observer.observe(pane, { childList: true });
  }

  function init() {  // (a new page's language: inbox.js reloads the shared catalog)
    var bar = document.getElementById("bulk-form");
    if (bar) { bar.classList.add("is-enhanced"); }
    watchList();
    syncBulkArgs();
    restoreSelection();
    syncPrefs();
    showUnread();
    if (counts) { applyCounts(counts); }
    scheduleState(false);
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target && (e.target.id === "page" || e.target === document.body)) {
      // a new page: a different list, so the selection starts empty
      selection = {};
      lastClicked = null;
      init();
    }
  });
})();
