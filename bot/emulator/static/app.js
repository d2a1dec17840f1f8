// The emulator's page: polls /emulator/state and draws one user's Slack, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  me: localStorage.getItem("emulator-user") || "U0ALICE",
  channel: localStorage.getItem("emulator-channel") || "C0APPROVALS",
  data: null, lastJson: "", shownView: "",
};

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "html") el.innerHTML = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) el.append(c);
  return el;
}

const escapeHtml = (s) => String(s).replace(/[&<>"]/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

function userName(id) {
  const u = (state.data?.users || []).find((x) => x.id === id);
  return u ? u.name : id;
}

function channelName(id) {
  const c = (state.data?.channels || []).find((x) => x.id === id);
  return c ? c.name : id;
}

// Emoji shortcodes as characters: every one the bot uses (a test checks), and common ones;
// others show as text, as in a client without them.
const EMOJI = {
  white_check_mark: "✅", no_entry: "⛔", no_entry_sign: "🚫", pencil2: "✏️", pencil: "📝",
  hourglass: "⌛", hourglass_flowing_sand: "⏳", ghost: "👻", x: "❌", red_circle: "🔴",
  large_orange_circle: "🟠", large_yellow_circle: "🟡", large_green_circle: "🟢",
  large_blue_circle: "🔵", busts_in_silhouette: "👥", bust_in_silhouette: "👤",
  speech_balloon: "💬", fast_forward: "⏩", warning: "⚠️", heavy_check_mark: "✔️",
  white_circle: "⚪", black_circle: "⚫", lock: "🔒", unlock: "🔓", key: "🔑", bell: "🔔",
  eyes: "👀", rocket: "🚀", tada: "🎉", thumbsup: "👍", "+1": "👍", thumbsdown: "👎",
  "-1": "👎", wave: "👋", clap: "👏", pray: "🙏", fire: "🔥", bulb: "💡", memo: "📝",
  mag: "🔍", link: "🔗", clock1: "🕐", alarm_clock: "⏰", stopwatch: "⏱️", calendar: "📆",
  information_source: "ℹ️", question: "❓", exclamation: "❗", heavy_plus_sign: "➕",
  heavy_minus_sign: "➖", arrow_right: "➡️", arrows_counterclockwise: "🔄", repeat: "🔁",
  package: "📦", gear: "⚙️", wrench: "🔧", hammer: "🔨", shield: "🛡️", robot_face: "🤖",
  email: "📧", envelope: "✉️", inbox_tray: "📥", outbox_tray: "📤", ship: "🚢",
  construction: "🚧", rotating_light: "🚨", sparkles: "✨", star: "⭐", smile: "😄",
  slightly_smiling_face: "🙂", thinking_face: "🤔", ok_hand: "👌", raised_hand: "✋",
  stop_sign: "🛑", checkered_flag: "🏁", chart_with_upwards_trend: "📈", bar_chart: "📊",
};
const emojify = (html) => html.replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] || all);

// Slack's date token, shown in the reader's own time zone as Slack does.
function slackDate(epoch, fallback) {
  const d = new Date(Number(epoch) * 1000);
  return isNaN(d) ? fallback : d.toLocaleString();
}

// Slack's mrkdwn, the common subset: *bold*, _italic_, ~strike~, `code`, mentions, links.
function mrkdwn(text) {
  return escapeHtml(text)
    .replace(/&lt;!date\^(\d+)\^[^|&]*\|([^&]*)&gt;/g, (_, epoch, fb) => slackDate(epoch, fb))
    .replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] || all)
    .replace(/`([^`\n]+)`/g, "<code>$1</code>")
    .replace(/&lt;@([UW][A-Z0-9]+)(?:\|[^&]*)?&gt;/g,
      (_, id) => `<span class="mention">@${escapeHtml(userName(id))}</span>`)
    .replace(/&lt;!subteam\^([A-Z0-9]+)(?:\|([^&]*))?&gt;/g,
      (_, id, label) => `<span class="mention">${label || "@" + id}</span>`)
    .replace(/&lt;#([CD][A-Z0-9]+)(?:\|([^&]*))?&gt;/g,
      (_, id, label) => `#${escapeHtml(label || channelName(id))}`)
    .replace(/&lt;(https?:[^|&]+)(?:\|([^&]+))?&gt;/g, link)
    .replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,!?:;])/g, "$1<b>$2</b>")
    .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,!?:;])/g, "$1<i>$2</i>")
    .replace(/(^|[\s(])~([^~\n]+)~(?=$|[\s).,!?:;])/g, "$1<s>$2</s>")
    .replace(/\n/g, "<br>")
    // Slack's own escapes (&amp; &lt; &gt;) show as the characters they stand for.
    .replace(/&amp;(amp|lt|gt);/g, "&$1;");
}

// A message's permalink (chat.getPermalink's https://<team>.slack.com/archives/<channel>/p<ts>)
// opens that message on this page, as Slack's client does; any other link opens a tab.
const PERMALINK = /^https:\/\/[a-z0-9-]+\.slack\.com\/archives\/([CDG][A-Z0-9]+)\/p(\d{7,})$/;

function link(_, url, label) {
  const found = PERMALINK.exec(url);
  if (!found) return `<a href="${url}" target="_blank">${label || url}</a>`;
  const ts = `${found[2].slice(0, -6)}.${found[2].slice(-6)}`;
  return `<a href="${url}" class="permalink" data-channel="${found[1]}" data-ts="${ts}">` +
    `${label || url}</a>`;
}

function followPermalink(a) {
  state.channel = a.dataset.channel;
  state.highlight = a.dataset.ts;
  save();
  render();
  const el = document.querySelector(`#messages [data-ts="${CSS.escape(a.dataset.ts)}"]`);
  el?.scrollIntoView({ block: "center" });
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest?.("a.permalink");
  if (!a) return;
  ev.preventDefault();
  followPermalink(a);
});

function textObj(t) {
  if (!t) return h("span");
  if (t.type === "mrkdwn") return h("span", { html: mrkdwn(t.text) });
  const shown = escapeHtml(t.text).replace(/\n/g, "<br>");
  return h("span", { html: t.emoji === false ? shown : emojify(shown) });  // as Slack does
}

// Slack lays a context block's elements side by side with space between: never run together.
function contextBlock(b) {
  const parts = b.elements.map((e) => h("span", { class: "context-el" },
    e.type === "image" ? `[${e.alt_text}]` : textObj(e)));
  return h("div", { class: "context" }, parts.flatMap((p, i) => i ? [" ", p] : [p]));
}

// An empty channel says what to type, so a first visit is not a blank page.
function emptyHint() {
  const example = "/signoff deploy Ship api v2 to production";
  return h("div", { class: "empty-hint" }, "No messages yet. Try ",
    h("code", { onclick: () => { $("command").value = example; $("command").focus(); } },
      example), ".");
}

function button(el, ctx) {
  return h("button", {
    class: `el ${el.style || ""}`, type: "button", "data-action-id": el.action_id || "",
    onclick: () => click(el, ctx),
  }, el.text ? textObj(el.text) : "");
}

function renderBlock(b, ctx) {
  switch (b.type) {
    case "header": return h("div", { class: "header-block" }, textObj(b.text));
    case "divider": return h("hr");
    case "section": return h("div", { class: "section" },
      b.text ? h("div", {}, textObj(b.text)) : null,
      b.fields ? h("div", { class: "fields" }, b.fields.map((f) => h("div", {}, textObj(f))))
        : null,
      b.accessory?.type === "button" ? button(b.accessory, ctx) : null);
    case "context": return contextBlock(b);
    case "actions": return h("div", { class: "actions" },
      b.elements.filter((e) => e.type === "button").map((e) => button(e, ctx)));
    case "image": return h("div", { class: "context" }, `[image: ${b.alt_text}]`);
    case "rich_text": return h("div", {}, richText(b.elements));
    default: return h("div", { class: "context" }, `[${b.type} block]`);
  }
}

function richText(elements) {
  // Loosely: the text of every leaf, in order.
  const out = [];
  const walk = (els) => (els || []).forEach((e) => {
    if (e.text) out.push(e.text);
    else if (e.type === "user") out.push("@" + userName(e.user_id));
    walk(e.elements);
  });
  walk(elements);
  return out.join("");
}

function renderMessage(m, ctx) {
  const author = m.subtype === "ephemeral" ? "signoff (only visible to you)"
    : m.bot_id ? state.data.bot.name : userName(m.user);
  const body = m.blocks?.length ? m.blocks.map((b) => renderBlock(b, ctx))
    : [h("div", { html: mrkdwn(m.text || "") })];
  const mark = m.ts === state.highlight ? " highlight" : "";
  return h("div", { class: `message ${m.subtype || ""}${mark}`, "data-ts": m.ts },
    h("div", { class: "meta" }, h("b", {}, author),
      new Date(parseFloat(m.ts) * 1000).toLocaleTimeString(),
      m.edited ? h("span", { class: "edited" }, " (edited)") : null),
    body,
    m.replies?.length ? h("div", { class: "replies" },
      m.replies.map((r) => renderMessage(r, { ...ctx, ts: r.ts }))) : null);
}

function render() {
  const d = state.data;
  $("team").textContent = `${d.team.name} · Slack emulator`;
  $("bot-status").textContent = d.bot.connected ? "" : "(no bot connected)";
  const picker = $("user-picker");
  if (picker.options.length !== d.users.length) {
    picker.replaceChildren(...d.users.map((u) =>
      h("option", { value: u.id }, `${u.name} (${u.title})`)));
  }
  picker.value = state.me;
  $("channels").replaceChildren(...d.channels.map((c) => h("button", {
    class: c.id === state.channel ? "active" : "", "data-channel": c.id,
    onclick: () => { state.channel = c.id; save(); render(); },
  }, c.name.includes("(DM)") ? c.name : `# ${c.name}`)));
  const chan = d.channels.find((c) => c.id === state.channel) || d.channels[0];
  state.channel = chan.id;
  $("channel-title").textContent = chan.name.includes("(DM)") ? chan.name : `#${chan.name}`;
  const items = [...(d.messages[chan.id] || []),
    ...d.ephemerals.filter((e) => e.channel === chan.id)]
    .sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...(items.length ? items.map((m) => renderMessage(m, { ts: m.ts }))
    : [emptyHint()]));
  if (atBottom) box.scrollTop = box.scrollHeight;
  const failure = d.failures[0];
  if (failure) setStatus(`last request to the bot failed: ${failure.error || "HTTP " + failure.status}`);
  renderModal(d.views[d.views.length - 1]);
  renderHome(d);
}

function renderModal(view) {
  const modal = $("modal");
  if (!view) { modal.hidden = true; state.shownView = ""; return; }
  const key = `${view.id}:${view.hash}`;
  if (state.shownView !== key) {
    // Redraw only for a new view, so what the user typed survives each poll.
    state.shownView = key;
    $("modal-title").textContent = view.title?.text || "";
    $("modal-submit").textContent = view.submit?.text || "Submit";
    $("modal-close").textContent = view.close?.text || "Cancel";
    $("modal-submit").hidden = !view.submit;
    $("modal-blocks").replaceChildren(...view.blocks.map((b) => b.type === "input"
      ? inputBlock(b) : renderBlock(b, {})));
    modal.hidden = false;
    modal.querySelector("input, textarea, select")?.focus();
  }
  modal.dataset.viewId = view.id;
  for (const el of modal.querySelectorAll(".input-error")) {
    el.textContent = view.errors[el.dataset.blockId] || "";
  }
}

function inputBlock(b) {
  const e = b.element;
  const id = `in-${b.block_id}`;
  const attrs = { id, "data-block-id": b.block_id, "data-action-id": e.action_id };
  let field;
  if (e.type === "plain_text_input") {
    const common = { ...attrs, placeholder: e.placeholder?.text || "" };
    field = e.multiline ? h("textarea", { ...common, rows: 3 }, e.initial_value || "")
      : h("input", { ...common, type: "text", value: e.initial_value || "" });
  } else if (e.type === "static_select") {
    field = h("select", attrs, h("option", { value: "" }, e.placeholder?.text || "Choose…"),
      (e.options || []).map((o) => h("option", { value: o.value }, o.text.text)));
  } else if (e.type === "datepicker") {
    field = h("input", { ...attrs, type: "date", value: e.initial_date || "" });
  } else if (e.type === "radio_buttons" || e.type === "checkboxes") {
    const kind = e.type === "radio_buttons" ? "radio" : "checkbox";
    field = h("div", { ...attrs, "data-kind": kind }, (e.options || []).map((o) =>
      h("label", {}, h("input", { type: kind, name: id, value: o.value }), " ", o.text.text)));
  } else {
    field = h("input", { ...attrs, type: "text" });
  }
  return h("div", { class: "input-block" },
    h("label", { for: id }, b.label.text, b.optional ? " (optional)" : ""), field,
    b.hint ? h("div", { class: "context" }, b.hint.text) : null,
    h("div", { class: "input-error", "data-block-id": b.block_id }));
}

function modalValues() {
  const values = {};
  for (const el of $("modal-blocks").querySelectorAll("[data-action-id]")) {
    let v = el.value;
    if (el.dataset.kind) {
      const picked = [...el.querySelectorAll("input:checked")].map((i) => i.value);
      v = el.dataset.kind === "radio" ? picked[0] || "" : picked;
    }
    (values[el.dataset.blockId] ||= {})[el.dataset.actionId] = v;
  }
  return values;
}

async function post(path, body) {
  setStatus("");
  try {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    const result = await r.json();
    if (!result.ok) setStatus(result.error || "failed");
    return result;
  } catch (err) {
    setStatus(String(err));
    return { ok: false };
  } finally {
    poll();
  }
}

function click(el, ctx) {
  if (ctx.home) return clickHome(el);
  const c = el.confirm;
  if (c && !window.confirm(`${c.title?.text || ""}\n\n${c.text?.text || ""}`)) return;
  post("/emulator/click", { user: state.me, channel: state.channel, message_ts: ctx.ts,
    action_id: el.action_id, value: el.value ?? null });
}

function setStatus(text) { $("status").textContent = text; }
function save() {
  localStorage.setItem("emulator-user", state.me);
  localStorage.setItem("emulator-channel", state.channel);
}

async function poll() {
  try {
    const r = await fetch(`/emulator/state?user=${encodeURIComponent(state.me)}`);
    const json = await r.text();
    if (json === state.lastJson) return;
    state.lastJson = json;
    state.data = JSON.parse(json);
    render();
  } catch (err) {
    setStatus(`emulator unreachable: ${err}`);
  }
}

$("user-picker").addEventListener("change", (ev) => {
  state.me = ev.target.value; state.lastJson = ""; save(); poll();
});
$("composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("command").value.trim();
  if (!text) return;
  const result = await post("/emulator/command",
    { user: state.me, channel: state.channel, text });
  if (result.ok) $("command").value = "";
});
$("modal-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  post("/emulator/submit", { user: state.me, view_id: $("modal").dataset.viewId,
    values: modalValues() });
});
$("modal-close").addEventListener("click", () =>
  post("/emulator/close", { view_id: $("modal").dataset.viewId }));

poll();
setInterval(poll, 500);

// The bot's App Home: its entry under "Apps" in the sidebar opens the Home tab (Slack sends
// app_home_opened), which shows the view the bot last published for this user; its buttons
// are clicks from a view (no channel). Drawn after render(), only while the tab is open.
function renderHome(d) {
  const nav = $("channels");
  nav.append(h("div", { class: "nav-label" }, "Apps"),
    h("button", { class: state.home ? "active" : "", "data-home": d.bot.id,
      onclick: openHome }, d.bot.name));
  if (state.home) nav.querySelectorAll("[data-channel]").forEach((b) => b.classList.remove("active"));
  let box = $("home");
  if (!box) {
    box = h("div", { id: "home", hidden: "" });
    $("messages").after(box);
  }
  box.hidden = !state.home;
  $("messages").hidden = state.home;
  $("composer").hidden = state.home;
  if (!state.home) { box.replaceChildren(); return; }
  $("channel-title").textContent = `${d.bot.name} · Home`;
  box.replaceChildren(...(d.home ? d.home.blocks.map((b) => renderBlock(b, { home: true }))
    : [h("div", { class: "context" }, "Opening the Home tab…")]));
}

function openHome() {
  state.home = true;
  render();
  post("/emulator/home", { user: state.me });
}

function clickHome(el) {
  const c = el.confirm;
  if (c && !window.confirm(`${c.title?.text || ""}\n\n${c.text?.text || ""}`)) return;
  post("/emulator/home/click", { user: state.me, action_id: el.action_id,
    value: el.value ?? null });
}

// A channel's entry leaves the Home tab; another user opening the page sees their own Home.
$("channels").addEventListener("click", (ev) => {
  if (ev.target.closest("[data-channel]")) state.home = false;
}, true);
$("user-picker").addEventListener("change", () => {
  if (state.home) post("/emulator/home", { user: state.me });
});
