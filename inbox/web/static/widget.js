/* Shopdesk chat widget: self-contained, no dependencies.
 *
 * The DOM is built with createElement/textContent only; text from the shop or the customer
 * is never parsed as HTML. The visitor's identity (an id the server minted plus the server's
 * signature over it) lives in localStorage so the conversation resumes after a reload.
 * Every message carries a client_id; unacknowledged messages are resent after a reconnect
 * and the server's dedupe makes the resend harmless.
 */
(function () {
  "use strict";
  if (window.__shopdeskWidget) { return; }
  window.__shopdeskWidget = true;

  var script = document.currentScript;
  var base = new URL(script && script.src ? script.src : "/widget.js", window.location.href);
  var STORE_KEY = "shopdesk.widget.identity";
  var QUEUE_KEY = "shopdesk.widget.unsent";
  var MAX_CHARS = parseInt((script && script.getAttribute("data-max-chars")) || "4096", 10);
  var shopName = (script && script.getAttribute("data-shop-name")) || "Chat";

  // The widget's own words, in the visitor's browser language (the bot's replies pick their
  // language from what the customer writes). Keep these six in step with templates/replies/.
  var WORDS = {
    "en": ["Chat with us", "We usually reply within minutes", "Hi! Ask us anything about your order, shipping or returns.",
           "Type your message…", "Send", "Message", "You", "Assistant", "Support", "Connecting…", "Reconnecting…",
           "Not sent", "That message is too long.", "Something went wrong.", "Close chat", "Chat with {shop}"],
    "es": ["Chatea con nosotros", "Solemos responder en pocos minutos",
           "¡Hola! Pregúntanos lo que quieras sobre tu pedido, el envío o las devoluciones.",
           "Escribe tu mensaje…", "Enviar", "Mensaje", "Tú", "Asistente", "Atención al cliente", "Conectando…",
           "Reconectando…", "No enviado", "Ese mensaje es demasiado largo.", "Algo ha fallado.", "Cerrar el chat",
           "Chat con {shop}"],
    "ru": ["Напишите нам", "Обычно отвечаем в течение нескольких минут",
           "Здравствуйте! Спросите нас о заказе, доставке или возврате.", "Введите сообщение…", "Отправить",
           "Сообщение", "Вы", "Ассистент", "Поддержка", "Подключение…", "Переподключение…", "Не отправлено",
           "Сообщение слишком длинное.", "Что-то пошло не так.", "Закрыть чат", "Чат с {shop}"],
    "vi": ["Chat với chúng tôi", "Chúng tôi thường trả lời trong vài phút",
           "Xin chào! Hãy hỏi chúng tôi bất cứ điều gì về đơn hàng, vận chuyển hoặc đổi trả.", "Nhập tin nhắn…",
           "Gửi", "Tin nhắn", "Bạn", "Trợ lý", "Hỗ trợ", "Đang kết nối…", "Đang kết nối lại…", "Chưa gửi được",
           "Tin nhắn quá dài.", "Đã có lỗi xảy ra.", "Đóng chat", "Chat với {shop}"],
    "zh-Hans": ["在线咨询", "我们通常几分钟内回复", "您好！关于订单、配送或退货的问题都可以问我们。", "输入消息…", "发送",
                "消息", "我", "智能助手", "客服", "正在连接…", "正在重新连接…", "未发送", "消息太长了。", "出错了。",
                "关闭聊天", "与 {shop} 聊天"],
    "zh-Hant": ["線上諮詢", "我們通常幾分鐘內回覆", "您好！關於訂單、配送或退貨的問題都可以問我們。", "輸入訊息…", "傳送",
                "訊息", "我", "智慧助理", "客服", "正在連線…", "正在重新連線…", "未傳送", "訊息太長了。", "發生錯誤。",
                "關閉聊天", "與 {shop} 聊天"]
  };
  var KEYS = ["launcher", "subtitle", "empty", "placeholder", "send", "message", "you", "assistant", "support",
              "connecting", "reconnecting", "notSent", "tooLong", "failed", "close", "chatWith"];

  function pickLanguage(tag) {
    tag = String(tag || "").toLowerCase();
    if (tag.indexOf("zh") === 0) {
      return /hant|-tw|-hk|-mo/.test(tag) ? "zh-Hant" : "zh-Hans";
    }
    var primary = tag.split("-")[0];
    return WORDS.hasOwnProperty(primary) ? primary : "en";
  }

  var T = {};
  (function () {
    var words = WORDS[pickLanguage(navigator.language)];
    for (var i = 0; i < KEYS.length; i++) { T[KEYS[i]] = words[i]; }
  })();

  function chatWith(name) { return T.chatWith.replace("{shop}", name); }

  // ------------------------------------------------------------------ helpers

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function svgIcon(pathData) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "sdw-icon");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", pathData);
    svg.appendChild(path);
    return svg;
  }

  function readJSON(key, fallback) {
    try {
      var raw = window.localStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) { return fallback; }
  }

  function writeJSON(key, value) {
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  function newClientId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += ("0" + bytes[i].toString(16)).slice(-2); }
    return out;
  }

  // ------------------------------------------------------------------ DOM

  var root = el("div", "sdw-root");
  root.setAttribute("data-shopdesk-widget", "");

  var launcher = el("button", "sdw-launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "sdw-panel");
  launcher.appendChild(svgIcon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"));
  launcher.appendChild(el("span", "sdw-launcher-label", T.launcher));
  var badge = el("span", "sdw-badge");
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el("section", "sdw-panel");
  panel.id = "sdw-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", chatWith(shopName));

  var header = el("header", "sdw-header");
  var heading = el("div", "sdw-heading");
  var title = el("strong", "sdw-title", shopName);
  var subtitle = el("span", "sdw-sub", T.subtitle);
  heading.appendChild(title);
  heading.appendChild(subtitle);
  var closeButton = el("button", "sdw-close");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", T.close);
  closeButton.appendChild(svgIcon("M6 6l12 12M18 6L6 18"));
  header.appendChild(heading);
  header.appendChild(closeButton);

  var status = el("div", "sdw-status", T.connecting);
  status.setAttribute("role", "status");
  status.hidden = true;

  var log = el("ol", "sdw-log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", "Chat history");
  var empty = el("li", "sdw-empty", T.empty);
  log.appendChild(empty);

  var quick = el("div", "sdw-quick");
  quick.hidden = true;

  var errorBox = el("div", "sdw-error");
  errorBox.setAttribute("role", "alert");
  errorBox.hidden = true;

  var form = el("form", "sdw-form");
  form.setAttribute("novalidate", "");
  var inputLabel = el("label", "sdw-sr", T.message);
  inputLabel.setAttribute("for", "sdw-input");
  var input = el("textarea", "sdw-input");
  input.id = "sdw-input";
  input.rows = 1;
  input.placeholder = T.placeholder;
  input.maxLength = MAX_CHARS;
  input.setAttribute("autocomplete", "off");
  var send = el("button", "sdw-send");
  send.type = "submit";
  send.setAttribute("aria-label", T.send);
  send.appendChild(svgIcon("M3 20l18-8L3 4v6l12 2-12 2z"));
  send.appendChild(el("span", "sdw-send-label", T.send));
  form.appendChild(inputLabel);
  form.appendChild(input);
  form.appendChild(send);

  panel.appendChild(header);
  panel.appendChild(status);
  panel.appendChild(log);
  panel.appendChild(quick);
  panel.appendChild(errorBox);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(launcher);

  // ------------------------------------------------------------------ state

  var identity = readJSON(STORE_KEY, null);
  var unsent = readJSON(QUEUE_KEY, []); // frames not yet acknowledged: [{type, text|value, label, client_id}]
  if (!Array.isArray(unsent)) { unsent = []; }
  var socket = null;
  var ready = false;
  var retries = 0;
  var reconnectTimer = null;
  var unread = 0;
  var errorTimer = null;

  function saveUnsent() { writeJSON(QUEUE_KEY, unsent); }

  function isOpen() { return !panel.hidden; }

  function setStatus(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    if (errorTimer) { window.clearTimeout(errorTimer); }
    errorTimer = window.setTimeout(function () { errorBox.hidden = true; }, 6000);
  }

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function authorLabel(frame) {
    if (frame.author === "customer") { return T.you; }
    if (frame.author === "agent") { return frame.author_name || T.support; }
    return frame.author_name || T.assistant;
  }

  function findById(id) {
    var nodes = log.querySelectorAll("[data-id]");
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].getAttribute("data-id") === String(id)) { return nodes[i]; }
    }
    return null;
  }

  function findPending(clientId) {
    var nodes = log.querySelectorAll("[data-client-id]");
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].getAttribute("data-client-id") === clientId) { return nodes[i]; }
    }
    return null;
  }

  // http(s) links in the shop's messages (tracking pages, return labels) become tappable;
  // built as <a> elements with textContent, never parsed as HTML
  var LINK_RE = /https?:\/\/[^\s<>"]+/g;

  function linkedText(text) {
    var box = el("div", "sdw-text");
    var last = 0;
    String(text).replace(LINK_RE, function (match, offset) {
      var url = match.replace(/[.,;:!?)\]]+$/, "");
      box.appendChild(document.createTextNode(text.slice(last, offset)));
      var link = el("a", "sdw-link", url);
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      box.appendChild(link);
      last = offset + url.length;
      return match;
    });
    box.appendChild(document.createTextNode(text.slice(last)));
    return box;
  }

  function buildBubble(author, label, text) {
    var item = el("li", "sdw-msg sdw-msg--" + (author === "customer" ? "customer" : author === "agent" ? "agent" : "bot"));
    if (author !== "customer") { item.appendChild(el("span", "sdw-author", label)); }
    item.appendChild(author === "customer" ? el("div", "sdw-text", text) : linkedText(String(text)));
    return item;
  }

  function renderQuickReplies(options) {
    while (quick.firstChild) { quick.removeChild(quick.firstChild); }
    if (!options || !options.length) { quick.hidden = true; return; }
    options.slice(0, 10).forEach(function (option) {
      if (!option || typeof option.label !== "string") { return; }
      var button = el("button", "sdw-chip", option.label);
      button.type = "button";
      button.addEventListener("click", function () {
        renderQuickReplies([]);
        submitFrame({ type: "postback", value: String(option.value || option.label), label: option.label });
      });
      quick.appendChild(button);
    });
    quick.hidden = !quick.firstChild;
  }

  function addMessage(frame, live) {
    if (empty.parentNode) { log.removeChild(empty); }
    if (frame.id !== undefined && frame.id !== null && findById(frame.id)) {
      if (frame.client_id) {
        var dup = findPending(frame.client_id);
        if (dup && dup.parentNode) { dup.parentNode.removeChild(dup); }
      }
      return;
    }
    if (frame.client_id) {
      var pending = findPending(frame.client_id);
      if (pending) {
        pending.classList.remove("sdw-msg--pending");
        pending.removeAttribute("data-client-id");
        if (frame.id !== undefined && frame.id !== null) { pending.setAttribute("data-id", String(frame.id)); }
        return;
      }
    }
    var item = buildBubble(frame.author, authorLabel(frame), frame.text || "");
    if (frame.id !== undefined && frame.id !== null) { item.setAttribute("data-id", String(frame.id)); }
    log.appendChild(item);
    if (frame.author !== "customer") {
      renderQuickReplies(frame.quick_replies || []);
      if (live && !isOpen()) {
        unread += 1;
        badge.textContent = String(unread);
        badge.hidden = false;
      }
    }
    scrollToEnd();
  }

  function addPending(frame) {
    if (empty.parentNode) { log.removeChild(empty); }
    var existing = findPending(frame.client_id);
    if (existing) { return; }
    var text = frame.type === "postback" ? frame.label : frame.text;
    var item = buildBubble("customer", T.you, text);
    item.classList.add("sdw-msg--pending");
    item.setAttribute("data-client-id", frame.client_id);
    log.appendChild(item);
    scrollToEnd();
  }

  function renderHistory(messages) {
    while (log.firstChild) { log.removeChild(log.firstChild); }
    if (!messages || !messages.length) { log.appendChild(empty); }
    (messages || []).forEach(function (m) { addMessage(m, false); });
    var last = messages && messages.length ? messages[messages.length - 1] : null;
    renderQuickReplies(last && last.author !== "customer" ? last.quick_replies : []);
    unsent.forEach(addPending);
    scrollToEnd();
  }

  // ------------------------------------------------------------------ socket

  function socketUrl() {
    var scheme = base.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + base.host + "/widget/ws";
  }

  function sendRaw(frame) {
    if (socket && ready && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function flushUnsent() {
    unsent.forEach(function (frame) { sendRaw(frame); });
  }

  function submitFrame(frame) {
    frame.client_id = newClientId();
    unsent.push(frame);
    saveUnsent();
    addPending(frame);
    if (!sendRaw(frame)) {
      connect();
      setStatus(T.connecting);
    }
  }

  function acknowledge(clientId) {
    var before = unsent.length;
    unsent = unsent.filter(function (f) { return f.client_id !== clientId; });
    if (unsent.length !== before) { saveUnsent(); }
  }

  function onFrame(event) {
    var frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    if (!frame || typeof frame.type !== "string") { return; }
    if (frame.type === "session") {
      identity = { visitor: frame.visitor, token: frame.token };
      writeJSON(STORE_KEY, identity);
      if (frame.shop_name) {
        title.textContent = frame.shop_name;
        panel.setAttribute("aria-label", chatWith(frame.shop_name));
      }
      ready = true;
      retries = 0;
      setStatus("");
    } else if (frame.type === "history") {
      renderHistory(frame.messages);
      flushUnsent();
    } else if (frame.type === "message") {
      if (frame.client_id) { acknowledge(frame.client_id); }
      addMessage(frame, true);
    } else if (frame.type === "error") {
      if (frame.client_id) {
        acknowledge(frame.client_id);
        var failed = findPending(frame.client_id);
        if (failed) {
          failed.classList.remove("sdw-msg--pending");
          failed.classList.add("sdw-msg--failed");
          failed.appendChild(el("span", "sdw-failed-note", T.notSent));
        }
      }
      showError(frame.message || T.failed);
    }
  }

  function scheduleReconnect() {
    if (reconnectTimer) { return; }
    var delay = Math.min(30000, 1000 * Math.pow(2, retries)) * (0.5 + Math.random() / 2);
    retries += 1;
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  function connect() {
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) { return; }
    ready = false;
    try {
      socket = new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", function () {
      var hello = { type: "hello", lang: (navigator.language || "").slice(0, 16) };
      if (identity && identity.visitor && identity.token) {
        hello.visitor = identity.visitor;
        hello.token = identity.token;
      }
      socket.send(JSON.stringify(hello));
    });
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", function () {
      ready = false;
      if (isOpen()) { setStatus(T.reconnecting); }
      scheduleReconnect();
    });
    socket.addEventListener("error", function () { /* close follows */ });
  }

  // ------------------------------------------------------------------ UI events

  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    root.classList.add("sdw-open");
    unread = 0;
    badge.hidden = true;
    if (!ready) { setStatus(T.connecting); }
    connect();
    scrollToEnd();
    input.focus();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    root.classList.remove("sdw-open");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen()) { closePanel(); } else { openPanel(); } });
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { closePanel(); } });

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }
  input.addEventListener("input", autosize);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    if (text.length > MAX_CHARS) { showError(T.tooLong); return; }
    input.value = "";
    autosize();
    submitFrame({ type: "message", text: text });
  });

  function mount() {
    document.body.appendChild(root);
    if (identity && identity.visitor) { connect(); }
  }

  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("/static/web/widget.css", base).href;
  document.head.appendChild(css);

  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
