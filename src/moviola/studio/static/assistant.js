// The assistant: the panel's conversation (the reply streamed as it is written), the actions it
// proposes (performed by the page only after Apply), and `send`, the posting helper that
// Improve (Create) and "From a script" (Storyboard) use too.
import { csrf } from "./studio.js";

const NOW = "moviola.assistant.conversation"; // the conversation the panel is in, across pages
const OPEN = "moviola.assistant.open";

// --- posting -----------------------------------------------------------------------------------

// POST `fields` as a form, with the session's CSRF token; the response, or an Error whose
// message is the server's own (the API's error envelope) or says what went wrong on the way.
export async function send(url, fields, { method = "POST", signal } = {}) {
  const init = { method, signal, headers: { "x-csrf-token": csrf(), accept: "application/json" } };
  if (method === "POST") {
    const body = new FormData();
    body.set("csrf", csrf());
    for (const [name, value] of Object.entries(fields || {})) if (value != null) body.set(name, value);
    init.body = body;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Error("The server cannot be reached: check that it is running, then try again.");
  }
  if (response.redirected && new URL(response.url).pathname === "/signin") {
    throw new Error("Your session has ended: sign in again, then try again.");
  }
  if (!response.ok) throw new Error(await problem(response));
  return response;
}

async function problem(response) {
  try {
    const body = await response.json();
    if (body?.error?.message) return body.error.message;
  } catch {
    // Not the API's envelope: a page (the CSRF check's, a proxy's).
  }
  if (response.status === 403) return "This page has expired: reload it, then try again.";
  return `The server answered ${response.status} ${response.statusText}.`.trim();
}

// --- actions the pages perform -----------------------------------------------------------------

const performers = new Map(); // action type → what this page does for it

// A page says what it does when the creator applies an action of `type` (the Create page
// fills its prompt, the Storyboard adds shots, a video's page remixes it).
export function onAction(type, perform) {
  performers.set(type, perform);
}

const WHERE = { fill_prompt: "the Create page", add_shots: "the Storyboard page", remix: "the video's page" };

function describeAction(action) {
  const box = document.createElement("div");
  const title = document.createElement("p");
  const strong = document.createElement("strong");
  title.append(strong);
  box.append(title);
  if (action.type === "add_shots") {
    const n = action.shots.length;
    strong.textContent = `Add ${n} shot${n === 1 ? "" : "s"}`;
    const list = document.createElement("ol");
    for (const shot of action.shots) {
      const item = document.createElement("li");
      item.textContent = `${shot.prompt} (${shot.seconds} s)`;
      list.append(item);
    }
    box.append(list);
  } else {
    strong.textContent = action.type === "remix" ? "Remix this video with" : "Fill the prompt with";
    const quote = document.createElement("blockquote");
    quote.textContent = action.prompt;
    box.append(quote);
  }
  return box;
}

// --- the panel ---------------------------------------------------------------------------------

let resumeIn = null; // the panel's own, once it is set up

// Open the panel in an earlier conversation (a project page's "Resume").
export function resume(id) {
  resumeIn?.(id);
}

const root = document.getElementById("assistant");
if (root) setUpPanel(root);

function setUpPanel(root) {
  const toggle = document.getElementById("assistant-toggle");
  const panel = document.getElementById("assistant-panel");
  const closer = document.getElementById("assistant-close");
  const log = document.getElementById("assistant-log");
  const empty = document.getElementById("assistant-empty");
  const failure = document.getElementById("assistant-error");
  const form = document.getElementById("assistant-form");
  const input = document.getElementById("assistant-input");
  const sendButton = document.getElementById("assistant-send");
  const pickConversation = document.getElementById("assistant-conversation");
  const pickProject = document.getElementById("assistant-project");
  const page = root.dataset.page;
  let conversation = root.dataset.conversation || localStorage.getItem(NOW) || "";
  let loaded = null; // the pickers, once asked for
  let busy = false;

  function say(message) {
    failure.textContent = message || "";
    failure.hidden = !message;
  }

  function open(focus = true) {
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    document.body.classList.add("assistant-open");
    localStorage.setItem(OPEN, "1");
    loaded ??= load();
    if (focus) input.focus();
  }

  function close() {
    panel.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    document.body.classList.remove("assistant-open");
    localStorage.removeItem(OPEN);
    toggle.focus();
  }

  toggle.addEventListener("click", () => (panel.hidden ? open() : close()));
  closer.addEventListener("click", close);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });

  // The pickers and the conversation itself are read when the panel first opens, so a page
  // whose panel stays closed costs nothing more.
  async function load() {
    try {
      const data = await (await send("/studio/assistant/conversations", null, { method: "GET" })).json();
      pickProject.replaceChildren(new Option("No project", ""), ...data.projects.map((p) => new Option(p.name, p.id)));
      pickConversation.replaceChildren(
        new Option("New conversation", ""),
        ...data.conversations.map((c) => new Option(c.title, c.id)),
      );
      pickProject.value = root.dataset.project;
      // One remembered from an earlier page may be gone since (deleted, or another key's
      // after signing in again): then the panel starts afresh, saying nothing.
      if (conversation) await resume(conversation, { quiet: !root.dataset.conversation });
    } catch (err) {
      say(err.message);
    }
  }

  async function resume(id, { quiet = false } = {}) {
    say("");
    let found;
    try {
      found = await (await send(`/studio/assistant/conversations/${encodeURIComponent(id)}`, null, { method: "GET" })).json();
    } catch (err) {
      start();
      if (!quiet) say(err.message);
      return;
    }
    conversation = found.id;
    localStorage.setItem(NOW, conversation);
    if (![...pickConversation.options].some((o) => o.value === found.id)) {
      pickConversation.add(new Option(found.title, found.id), 1);
    }
    pickConversation.value = found.id;
    pickProject.value = found.project_id || "";
    log.replaceChildren(...found.messages.map((m) => bubble(m)));
    empty.hidden = found.messages.length > 0;
    log.lastElementChild?.scrollIntoView({ block: "end" });
  }

  function start() {
    conversation = "";
    localStorage.removeItem(NOW);
    pickConversation.value = "";
    pickProject.value = root.dataset.project;
    log.replaceChildren();
    empty.hidden = false;
  }

  resumeIn = async (id) => {
    if (loaded) {
      open(false);
      await loaded;
      await resume(id);
    } else {
      conversation = id; // the first load resumes it
      open(false);
      await loaded;
    }
    input.focus();
  };

  pickConversation.addEventListener("change", () => (pickConversation.value ? resume(pickConversation.value) : start()));
  pickProject.addEventListener("change", async () => {
    if (!conversation) return; // a new conversation starts in the project chosen
    say("");
    try {
      await send(`/studio/assistant/conversations/${encodeURIComponent(conversation)}/project`, {
        project_id: pickProject.value,
      });
    } catch (err) {
      say(err.message);
    }
  });

  // One message in the log; an assistant's with its proposed action, if any.
  function bubble(message) {
    const item = document.createElement("li");
    item.className = `msg ${message.role}`;
    const who = document.createElement("p");
    who.className = "who";
    who.textContent = message.role === "user" ? "You" : "Assistant";
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = message.content;
    item.append(who, text);
    if (message.action) item.append(card(message));
    return item;
  }

  function card(message) {
    const action = message.action;
    const box = document.createElement("div");
    box.className = "action-card";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Proposed action");
    box.dataset.state = action.state;
    box.append(describeAction(action));
    const status = document.createElement("p");
    status.className = "action-state";
    status.setAttribute("role", "status");
    box.append(status);
    const shown = { confirmed: "Applied.", dismissed: "Dismissed." };
    if (action.state !== "proposed") {
      status.textContent = shown[action.state];
      return box;
    }
    const perform = performers.get(action.type);
    const row = document.createElement("p");
    row.className = "row";
    const apply = document.createElement("button");
    apply.type = "button";
    apply.className = "primary";
    apply.textContent = "Apply";
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    if (perform) row.append(apply);
    else status.textContent = `Open ${WHERE[action.type]} to apply it.`;
    row.append(dismiss);
    box.append(row);

    async function decide(state) {
      apply.disabled = dismiss.disabled = true;
      try {
        await send(
          `/studio/assistant/conversations/${encodeURIComponent(conversation)}/messages/${encodeURIComponent(message.id)}/action`,
          { state },
        );
      } catch (err) {
        apply.disabled = dismiss.disabled = false;
        status.textContent = err.message;
        return;
      }
      box.dataset.state = state;
      row.remove();
      status.textContent = shown[state];
      // Recorded first, performed after: a remix leaves the page.
      if (state === "confirmed") perform(action);
    }
    apply.addEventListener("click", () => decide("confirmed"));
    dismiss.addEventListener("click", () => decide("dismissed"));
    return box;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!busy && input.value.trim()) talk(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  async function talk(content) {
    busy = true;
    sendButton.disabled = true;
    say("");
    const reply = bubble({ role: "assistant", content: "" });
    const text = reply.querySelector(".text");
    try {
      if (!conversation) {
        const made = await (
          await send("/studio/assistant/conversations", { project_id: pickProject.value, title: content })
        ).json();
        conversation = made.id;
        localStorage.setItem(NOW, conversation);
        pickConversation.add(new Option(made.title, made.id), 1);
        pickConversation.value = made.id;
      }
      log.append(bubble({ role: "user", content }));
      empty.hidden = true;
      input.value = "";
      input.dispatchEvent(new Event("input"));
      // The reply is read out once whole, not word by word.
      log.setAttribute("aria-busy", "true");
      reply.classList.add("writing");
      log.append(reply);
      const response = await send(`/studio/assistant/conversations/${encodeURIComponent(conversation)}/messages`, {
        content,
        context: JSON.stringify(pageContext()),
      });
      for await (const { name, data } of events(response)) {
        if (name === "delta") {
          text.textContent += data.content;
          reply.scrollIntoView({ block: "end" });
        } else if (name === "done") {
          reply.replaceWith(bubble(data));
        } else if (name === "error") {
          throw new Error(data.error.message);
        }
      }
    } catch (err) {
      if (!text.textContent) reply.remove();
      say(err.message);
    } finally {
      reply.classList.remove("writing");
      log.setAttribute("aria-busy", "false");
      log.lastElementChild?.scrollIntoView({ block: "end" });
      busy = false;
      sendButton.disabled = false;
    }
  }

  // What the page shows, for the assistant to know what the creator is looking at.
  function pageContext() {
    const value = (id) => document.getElementById(id)?.value || undefined;
    if (page === "create") {
      return { page, prompt: value("prompt"), model: value("model"), size: value("size"), seconds: value("seconds") };
    }
    if (page === "storyboard") {
      const shots = [...document.querySelectorAll("#shots .shot")].slice(0, 24).map((shot) => ({
        prompt: shot.querySelector("textarea").value,
        seconds: shot.querySelector('input[type="number"]').value || null,
      }));
      return { page, shots, model: value("model"), size: value("size") };
    }
    if (page === "video") return { page, video_id: root.dataset.video };
    return { page: page || "other" };
  }

  if (root.dataset.conversation || (localStorage.getItem(OPEN) && matchMedia("(min-width: 1000px)").matches)) {
    open(false);
  }
}

// Server-Sent Events from a fetch response: {name, data} as each arrives.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) yield { name, data: JSON.parse(data) };
    }
  }
}
