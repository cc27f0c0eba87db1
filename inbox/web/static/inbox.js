/* Shopdesk inbox: progressive enhancement on top of server-rendered pages and htmx.
 *
 * - adds the CSRF header to htmx requests and shows errors as toasts;
 * - keyboard shortcuts (j/k, Enter, /, r, n, e, a, ?);
 * - live updates: the /inbox/ws socket sends ids of what changed; the page re-fetches the
 *   server-rendered (escaped) fragment and swaps it. Customer text never passes through
 *   innerHTML here: fragments are parsed with DOMParser (which runs no scripts) and the only
 *   text built in JS (toasts, presence, canned suggestions, translations) uses textContent;
 * - slash-insert: "/" plus a shortcut in the reply box offers canned responses (↑/↓, Enter, Esc);
 * - the UI language: _("…") looks strings up in the JSON catalog the page carries
 *   (the data-catalog attribute of #i18n-js, rendered for the agent's language; htmx drops
 *   <script> elements from swapped pages, so data travels in attributes);
 *   `make i18n-extract` finds the _("…") calls here.
 */
(function () {
  "use strict";

  var HEX = /^#[0-9a-fA-F]{6}$/;

  // ------------------------------------------------------------------ translations

  var catalog = null;

  function _(text) {
    if (catalog === null) {
      var el = document.getElementById("i18n-js");
      try { catalog = el ? JSON.parse(el.getAttribute("data-catalog") || "{}") : {}; } catch (e) { catalog = {}; }
    }
    return Object.prototype.hasOwnProperty.call(catalog, text) && catalog[text] ? catalog[text] : text;
  }

  // "%(name)s" placeholders, as in the Python catalogs
  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function csrfToken() {
    var meta = $('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function myAgentId() {
    var page = document.getElementById("page");
    return page ? parseInt(page.getAttribute("data-agent-id") || "0", 10) : 0;
  }

  function currentConversationId() {
    var el = document.getElementById("conversation");
    return el ? parseInt(el.getAttribute("data-conversation-id") || "0", 10) || null : null;
  }

  // ------------------------------------------------------------------ toasts

  function toast(text, isError) {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var item = document.createElement("div");
    item.className = "toast" + (isError ? " toast-error" : "");
    item.setAttribute("role", isError ? "alert" : "status");
    item.textContent = text;
    box.appendChild(item);
    window.setTimeout(function () { if (item.parentNode) { item.parentNode.removeChild(item); } }, isError ? 7000 : 3500);
  }

  function errorText(xhrOrText, status) {
    try {
      var data = JSON.parse(xhrOrText);
      if (data && typeof data.error === "string") { return data.error; }
    } catch (e) { /* not JSON */ }
    return fmt(_("Something went wrong (%(status)s). Please try again."), { status: status });
  }

  // shared with the other inbox scripts (triage.js), which run after this one
  window.shopdeskInbox = {
    _: _, fmt: fmt, $: $, $all: $all, csrfToken: csrfToken, myAgentId: myAgentId,
    currentConversationId: currentConversationId, toast: toast, errorText: errorText
  };

  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrfToken();
  });
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (xhr.status === 401) { window.location.assign("/login"); return; }
    toast(errorText(xhr.responseText, xhr.status), true);
  });
  document.addEventListener("htmx:sendError", function () {
    toast(_("Cannot reach the server. Check your connection."), true);
  });

  // ------------------------------------------------------------------ decorating a page

  function decorate(root) {
    $all("[data-color]", root).forEach(function (el) {
      var color = el.getAttribute("data-color");
      if (!HEX.test(color || "")) { return; }
      el.style.setProperty("--label-color", color);
    });
    $all("[data-tz-offset]", root).forEach(function (el) { el.value = String(new Date().getTimezoneOffset()); });
    $all("[data-snooze-toggle]", root).forEach(syncSnooze);
    $all(".msg-bot .msg-body, .msg-agent .msg-body", root).forEach(linkify);
  }

  // Links in what the bot and agents sent (tracking pages, return labels) become clickable.
  // Only text nodes are split; anchors get their text with textContent, never parsed HTML.
  var LINK_RE = /https?:\/\/[^\s<>"]+/g;

  function linkify(body) {
    if (body.getAttribute("data-linked")) { return; }
    body.setAttribute("data-linked", "1");
    Array.prototype.slice.call(body.childNodes).forEach(function (node) {
      if (node.nodeType !== 3 || !LINK_RE.test(node.nodeValue)) { return; }
      LINK_RE.lastIndex = 0;
      var text = node.nodeValue;
      var parts = document.createDocumentFragment();
      var last = 0;
      text.replace(LINK_RE, function (match, offset) {
        var url = match.replace(/[.,;:!?)\]]+$/, "");
        parts.appendChild(document.createTextNode(text.slice(last, offset)));
        var a = document.createElement("a");
        a.href = url;
        a.textContent = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        parts.appendChild(a);
        last = offset + url.length;
        return match;
      });
      parts.appendChild(document.createTextNode(text.slice(last)));
      node.parentNode.replaceChild(parts, node);
    });
  }

  function syncSnooze(select) {
    var field = select.form ? $("[data-snooze-field]", select.form) : null;
    if (field) { field.hidden = select.value !== "snoozed"; }
  }

  function setupComposer() {
    var tabs = $(".composer-tabs");
    if (!tabs) { return; }
    tabs.hidden = false;
    document.getElementById("composer").classList.add("has-tabs");
    showTab("reply", false);
  }

  function showTab(which, focus) {
    var reply = document.getElementById("reply-form");
    var note = document.getElementById("note-form");
    var tabReply = document.getElementById("tab-reply");
    var tabNote = document.getElementById("tab-note");
    if (!reply || !note) { return; }
    reply.hidden = which !== "reply";
    note.hidden = which !== "note";
    if (tabReply) { tabReply.setAttribute("aria-selected", String(which === "reply")); }
    if (tabNote) { tabNote.setAttribute("aria-selected", String(which === "note")); }
    if (focus) {
      var box = document.getElementById(which === "reply" ? "reply-text" : "note-text");
      if (box) { box.focus(); }
    }
  }

  function scrollTranscript(force) {
    var t = document.getElementById("transcript");
    if (t && (force || t.getAttribute("data-stick") !== "false")) { t.scrollTop = t.scrollHeight; }
  }

  function init() {
    catalog = null;  // a new page may be in another language
    setLive(!!socket && socket.readyState === WebSocket.OPEN);
    decorate(document);
    setupComposer();
    scrollTranscript(true);
    sendView();
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target && (e.target.id === "page" || e.target === document.body || e.target.contains(document.getElementById("conversation")))) {
      init();
    } else {
      decorate(e.target);
    }
  });

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("select[data-autosubmit]") && t.form) { t.form.requestSubmit(); }
    if (t.matches && t.matches("[data-snooze-toggle]")) { syncSnooze(t); }
  });

  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("button") : null;
    if (!t) { return; }
    if (t.id === "tab-reply") { showTab("reply", true); }
    else if (t.id === "tab-note") { showTab("note", true); }
    else if (t.id === "help-button") { toggleHelp(true); }
    else if (t.id === "help-close") { toggleHelp(false); }
    else if (t.hasAttribute("data-canned-insert")) {
      e.preventDefault();
      insertCanned();
    }
    else if (t.hasAttribute("data-translate-url")) {
      e.preventDefault();
      translateMessage(t);
    }
  });

  // ------------------------------------------------------------------ canned responses

  // The response rendered for this conversation, in its language (or the shop's default, with a
  // warning that the composer shows), replaces box.value[start, end).
  function fetchCanned(id, box, start, end) {
    var select = document.getElementById("canned-select");
    if (!select || !box) { return; }
    fetch(select.getAttribute("data-canned-url") + encodeURIComponent(id), {
      headers: { "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (r) {
      return r.text().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    }).then(function (res) {
      if (!res.ok) { toast(errorText(res.body, res.status), true); return; }
      var data = JSON.parse(res.body);
      var text = data.text || "";
      box.value = box.value.slice(0, start) + text + box.value.slice(end);
      showTab("reply", false);
      box.focus();
      box.selectionStart = box.selectionEnd = start + text.length;
      var warning = document.getElementById("canned-warning");
      if (warning) {
        warning.textContent = data.warning || "";
        warning.hidden = !data.warning;
      }
      select.value = "";
    }).catch(function () { toast(_("Cannot reach the server."), true); });
  }

  function insertCanned() {
    var select = document.getElementById("canned-select");
    var box = document.getElementById("reply-text");
    if (!select || !box || !select.value) { return; }
    fetchCanned(select.value, box, box.selectionStart || 0, box.selectionEnd || 0);
  }

  // ------------------------------------------------------------------ macros

  // A macro (its button, or "m" and its key: sla.js submits the same form) is applied without
  // leaving the page: labels, priority and assignment change at once on the server; its canned
  // response, rendered for this conversation, goes into the reply box at the cursor, to edit and
  // send; what waits for the send (the status) is named under the box and travels with the reply
  // as macro_id, which "Do not change the status" clears.
  function applyMacro(form) {
    var box = document.getElementById("reply-text");
    var start = box ? box.selectionStart || 0 : 0;
    var end = box ? box.selectionEnd || 0 : 0;
    var menu = document.getElementById("macros-menu");
    if (menu) { menu.open = false; }
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
      credentials: "same-origin"
    }).then(function (r) {
      return r.text().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    }).then(function (res) {
      if (res.status === 401) { window.location.assign("/login"); return; }
      if (!res.ok) { toast(errorText(res.body, res.status), true); return; }
      var data = JSON.parse(res.body);
      if (data.text && box) {
        box.value = box.value.slice(0, start) + data.text + box.value.slice(end);
        showTab("reply", false);
        box.focus();
        box.selectionStart = box.selectionEnd = start + data.text.length;
        var warning = document.getElementById("canned-warning");
        if (warning) { warning.textContent = data.warning || ""; warning.hidden = !data.warning; }
      }
      if (data.macro_id) { setPendingMacro(data.macro_id, data.pending || ""); }
      if (!data.text && data.message) { toast(data.message, false); }
      schedule("head", refreshHead);
      schedule("list", refreshList);
    }).catch(function () { toast(_("Cannot reach the server."), true); });
  }

  function setPendingMacro(id, note) {
    var field = document.getElementById("reply-macro");
    var line = document.getElementById("macro-pending");
    var text = document.getElementById("macro-pending-text");
    if (field) { field.value = id ? String(id) : ""; }
    if (text) { text.textContent = note; }
    if (line) { line.hidden = !(id && note); }
  }

  // capture: before htmx's boosted-form handler, which would navigate
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-macro-form") || !window.fetch) { return; }
    e.preventDefault();
    e.stopPropagation();
    applyMacro(form);
  }, true);

  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("#macro-pending-clear") : null;
    if (t) { e.preventDefault(); setPendingMacro(null, ""); }
  });

  // ------------------------------------------------------------------ slash-insert

  var SLASH_RE = /(^|\s)\/([a-z0-9_-]{0,64})$/;
  var MAX_SUGGESTIONS = 8;
  var slash = null;  // {start, end, items, active} while the list is open

  function cannedData() {
    var el = document.getElementById("canned-data");
    try { return el ? JSON.parse(el.getAttribute("data-canned") || "[]") : []; } catch (e) { return []; }
  }

  function closeSlash() {
    var list = document.getElementById("canned-suggest");
    var box = document.getElementById("reply-text");
    if (list) { list.hidden = true; list.textContent = ""; }
    if (box) { box.removeAttribute("aria-activedescendant"); box.setAttribute("aria-expanded", "false"); }
    slash = null;
  }

  function renderSlash() {
    var list = document.getElementById("canned-suggest");
    var box = document.getElementById("reply-text");
    if (!list || !box || !slash) { return; }
    list.textContent = "";
    if (!slash.items.length) {
      var none = document.createElement("li");
      none.className = "canned-none";
      none.textContent = _("No canned response starts with that.");
      list.appendChild(none);
    }
    slash.items.forEach(function (item, index) {
      var li = document.createElement("li");
      li.id = "canned-opt-" + index;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(index === slash.active));
      li.setAttribute("data-canned-id", String(item.id));
      var code = document.createElement("span");
      code.className = "code";
      code.textContent = "/" + item.shortcut;
      li.appendChild(code);
      if (item.title) {
        var title = document.createElement("span");
        title.className = "muted";
        title.textContent = " " + item.title;
        li.appendChild(title);
      }
      list.appendChild(li);
    });
    list.hidden = false;
    box.setAttribute("aria-expanded", "true");
    if (slash.items.length) { box.setAttribute("aria-activedescendant", "canned-opt-" + slash.active); }
    else { box.removeAttribute("aria-activedescendant"); }
  }

  function updateSlash(box) {
    var caret = box.selectionStart || 0;
    if (caret !== box.selectionEnd) { closeSlash(); return; }
    var match = SLASH_RE.exec(box.value.slice(0, caret));
    if (!match) { closeSlash(); return; }
    var query = match[2];
    var all = cannedData();
    var starts = all.filter(function (c) { return c.shortcut.indexOf(query) === 0; });
    var inside = all.filter(function (c) { return c.shortcut.indexOf(query) > 0; });
    var items = starts.concat(inside).slice(0, MAX_SUGGESTIONS);
    slash = { start: caret - query.length - 1, end: caret, items: items, active: 0 };
    renderSlash();
  }

  function chooseSlash(index) {
    var box = document.getElementById("reply-text");
    if (!slash || !box || !slash.items[index]) { closeSlash(); return; }
    var item = slash.items[index];
    var start = slash.start;
    var end = slash.end;
    closeSlash();
    fetchCanned(item.id, box, start, end);
  }

  // true when the key was the suggestion list's (the page's own shortcuts then ignore it)
  function slashKey(e) {
    if (!slash || e.target.id !== "reply-text" || e.ctrlKey || e.metaKey || e.altKey) { return false; }
    var count = slash.items.length;
    if (e.key === "ArrowDown" && count) { slash.active = (slash.active + 1) % count; renderSlash(); }
    else if (e.key === "ArrowUp" && count) { slash.active = (slash.active - 1 + count) % count; renderSlash(); }
    else if ((e.key === "Enter" || e.key === "Tab") && count) { chooseSlash(slash.active); }
    else if (e.key === "Escape") { closeSlash(); }
    else { return false; }
    e.preventDefault();
    return true;
  }

  document.addEventListener("input", function (e) {
    if (e.target && e.target.id === "reply-text") { updateSlash(e.target); }
  });
  document.addEventListener("mousedown", function (e) {
    var option = e.target.closest ? e.target.closest("#canned-suggest [role=option]") : null;
    if (option) {
      e.preventDefault();  // keep the focus (and the caret) in the reply box
      chooseSlash(parseInt(option.id.replace("canned-opt-", ""), 10));
    } else if (slash && e.target.id !== "reply-text") {
      closeSlash();
    }
  });

  // ------------------------------------------------------------------ translate a customer message

  function translateMessage(button) {
    var msg = button.closest(".msg");
    var out = msg ? $(".msg-translation", msg) : null;
    if (!out) { return; }
    button.disabled = true;
    fetch(button.getAttribute("data-translate-url"), {
      method: "POST",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
      credentials: "same-origin"
    }).then(function (r) {
      return r.text().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    }).then(function (res) {
      button.disabled = false;
      if (!res.ok) { toast(errorText(res.body, res.status), true); return; }
      out.textContent = JSON.parse(res.body).text || "";
      out.hidden = false;
    }).catch(function () {
      button.disabled = false;
      toast(_("Cannot reach the server."), true);
    });
  }

  // ------------------------------------------------------------------ keyboard

  function items() { return $all(".conv-item"); }

  function selectedIndex(list) {
    for (var i = 0; i < list.length; i++) { if (list[i].classList.contains("is-selected")) { return i; } }
    return -1;
  }

  function move(delta) {
    var list = items();
    if (!list.length) { return; }
    var index = selectedIndex(list);
    var next = index < 0 ? (delta > 0 ? 0 : list.length - 1) : Math.max(0, Math.min(list.length - 1, index + delta));
    list.forEach(function (el) { el.classList.remove("is-selected"); });
    list[next].classList.add("is-selected");
    list[next].scrollIntoView({ block: "nearest" });
  }

  function openSelected() {
    var list = items();
    var index = selectedIndex(list);
    if (index < 0) { return; }
    var link = $("a", list[index]);
    if (link) { link.click(); }
  }

  function submitForm(id) {
    var form = document.getElementById(id);
    if (form) { form.requestSubmit(); }
  }

  function toggleHelp(show) {
    var help = document.getElementById("help");
    if (!help) { return; }
    help.hidden = !show;
    if (show) { var close = document.getElementById("help-close"); if (close) { close.focus(); } }
  }

  document.addEventListener("keydown", function (e) {
    if (slashKey(e)) { return; }
    var t = e.target;
    var typing = t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName || "");
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && t.tagName === "TEXTAREA" && t.form) {
      e.preventDefault();
      t.form.requestSubmit();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) { return; }
    var help = document.getElementById("help");
    if (e.key === "Escape") {
      if (help && !help.hidden) { toggleHelp(false); }
      else if (typing) { t.blur(); }
      return;
    }
    if (typing) { return; }
    var handled = true;
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter": openSelected(); break;
      case "/": { var s = document.getElementById("search"); if (s) { s.focus(); s.select(); } break; }
      case "r": showTab("reply", true); break;
      case "n": showTab("note", true); break;
      case "e": submitForm("resolve-form"); break;
      case "a": submitForm("claim-form"); break;
      case "?": toggleHelp(help ? help.hidden : false); break;
      default: handled = false;
    }
    if (handled) { e.preventDefault(); }
  });

  // ------------------------------------------------------------------ live updates

  var socket = null;
  var retries = 0;
  var pending = {};

  function setLive(on) {
    var dot = document.getElementById("live-dot");
    if (dot) {
      dot.classList.toggle("is-live", on);
      dot.title = on ? _("Live updates on") : _("Reconnecting…");
    }
  }

  function sendView() {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "view", conversation_id: currentConversationId() }));
    }
    if (!currentConversationId()) { renderPresence([]); }
  }

  function renderPresence(viewers) {
    var el = document.getElementById("presence");
    if (!el) { return; }
    var me = myAgentId();
    var names = (viewers || []).filter(function (v) { return v.id !== me; }).map(function (v) { return v.name; });
    var who = names.join(", ");
    el.textContent = !names.length ? "" : names.length === 1 ? fmt(_("%(name)s is viewing"), { name: who })
      : fmt(_("%(names)s are viewing"), { names: who });
    el.hidden = names.length === 0;
  }

  function replaceFragment(id, onDone) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var src = el.getAttribute("data-src");
    if (!src) { return; }
    var wasAtBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    var scroll = el.scrollTop;
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
      if (r.status === 401) { window.location.assign("/login"); return null; }
      if (r.status === 404) { return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html === null || html === undefined) { return; }
      var current = document.getElementById(id);
      if (!current) { return; }
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById(id);
      if (!fresh) { return; }
      fresh = document.importNode(fresh, true);
      current.replaceWith(fresh);
      if (window.htmx) { window.htmx.process(fresh); }
      decorate(fresh);
      if (onDone) { onDone(fresh, wasAtBottom, scroll); }
    }).catch(function () { /* the next event retries */ });
  }

  function refreshList() {
    var list = items();
    var index = selectedIndex(list);
    var selectedId = index >= 0 ? list[index].getAttribute("data-id") : null;
    replaceFragment("conv-list", function (fresh, _bottom, scroll) {
      fresh.scrollTop = scroll;
      if (selectedId) {
        items().forEach(function (el) { el.classList.toggle("is-selected", el.getAttribute("data-id") === selectedId); });
      }
    });
  }

  function refreshTranscript() {
    replaceFragment("transcript", function (fresh, wasAtBottom, scroll) {
      if (wasAtBottom) { fresh.scrollTop = fresh.scrollHeight; } else { fresh.scrollTop = scroll; }
    });
  }

  function refreshHead() {
    replaceFragment("conv-head", function () { sendView(); });
  }

  function refreshSidebar() { replaceFragment("sidebar"); }

  // While a page navigation (boosted link or form) is in flight, a fragment fetched now could
  // be overwritten by the page that is about to arrive, rendered before the change. Remember
  // what changed and refresh it once the new page has settled.
  var navigating = 0;
  var deferred = {};

  function schedule(key, fn) {
    if (navigating > 0) { deferred[key] = fn; return; }
    if (pending[key]) { return; }
    pending[key] = window.setTimeout(function () { pending[key] = null; fn(); }, 150);
  }

  function isNavigation(e) {
    var elt = e.detail && e.detail.elt;
    return !!(e.detail && e.detail.boosted) || (elt && elt.closest && !!elt.closest("[hx-boost]"));
  }

  document.addEventListener("htmx:beforeRequest", function (e) { if (isNavigation(e)) { navigating += 1; } });
  document.addEventListener("htmx:afterRequest", function (e) {
    if (!isNavigation(e)) { return; }
    // settle runs after this event; give the swap a moment, then replay what was missed
    window.setTimeout(function () {
      navigating = Math.max(0, navigating - 1);
      if (navigating > 0) { return; }
      var todo = deferred;
      deferred = {};
      Object.keys(todo).forEach(function (key) { schedule(key, todo[key]); });
    }, 50);
  });

  // the notification badge: its count is pushed over the socket (inbox.web.live), never polled
  function showUnread(unread) {
    var badge = document.getElementById("unread-count");
    if (badge && typeof unread === "number" && unread >= 0) { badge.textContent = unread ? String(unread) : ""; }
  }

  // A customer profile changed (merge, un-merge, note, tags; ids of the profiles this agent may
  // open): the profile page showing one of them, and the sidebar of a conversation whose customer
  // is one of them (or has no profile yet: a merge may just have made one), re-read themselves;
  // the list too (it groups a customer's open conversations).
  function onCustomer(ids) {
    if (!Array.isArray(ids)) { return; }
    function shows(el) {
      var id = parseInt(el.getAttribute("data-profile-id") || "0", 10);
      return !id || ids.indexOf(id) >= 0;
    }
    var page = document.getElementById("customer-page");
    if (page && shows(page)) { schedule("customer", function () { replaceFragment("customer-page"); }); }
    var side = document.getElementById("side-customer-profile");
    if (side && shows(side)) { schedule("sidebar", refreshSidebar); }
    if (document.getElementById("conv-list")) { schedule("list", refreshList); }
  }

  function onLive(frame) {
    if (!frame || typeof frame.type !== "string") { return; }
    // other scripts (triage.js: live counts, notifications) follow the same frames
    document.dispatchEvent(new CustomEvent("shopdesk:live", { detail: frame }));
    var current = currentConversationId();
    if (frame.type === "presence") {
      if (frame.conversation_id === current) { renderPresence(frame.viewers); }
      return;
    }
    if (frame.type === "hello" || frame.type === "pong") { return; }
    if (frame.type === "notifications") { showUnread(frame.unread); return; }
    if (frame.type === "customer.updated") { onCustomer(frame.profile_ids); return; }
    schedule("list", refreshList);
    if (frame.conversation_id !== current) { return; }
    if (frame.type === "message.created" || frame.type === "message.delivery") {
      schedule("transcript", refreshTranscript);
    }
    if (frame.type === "message.created" || frame.type.indexOf("conversation.") === 0) {
      schedule("head", refreshHead);
    }
    if (frame.type === "contact.updated" || frame.author === "system") {
      schedule("sidebar", refreshSidebar);
    }
  }

  function connect() {
    if (!document.getElementById("page")) { return; }
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    try {
      socket = new WebSocket(scheme + "//" + window.location.host + "/inbox/ws");
    } catch (e) {
      return;
    }
    socket.addEventListener("open", function () {
      retries = 0;
      setLive(true);
      sendView();
    });
    socket.addEventListener("message", function (ev) {
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      onLive(frame);
    });
    socket.addEventListener("close", function (ev) {
      setLive(false);
      if (ev.code === 4401) { window.location.assign("/login"); return; }
      var delay = Math.min(30000, 1000 * Math.pow(2, retries)) * (0.5 + Math.random() / 2);
      retries += 1;
      window.setTimeout(function () {
        // catch up on what happened while disconnected
        refreshList();
        if (currentConversationId()) { refreshTranscript(); refreshHead(); }
        connect();
      }, delay);
    });
  }

  document.addEventListener("DOMContentLoaded", connect);
})();
