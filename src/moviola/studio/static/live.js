// Live progress: one renderer for a job's state wherever a page shows it (its card, its page,
// the queue), from one payload shape (library.JobState), so that a badge and a bar can never
// tell different stories. At most one EventSource per page, for the jobs it shows; the server
// pushes changes. More cards (infinite scroll) replace the stream rather than add one: a
// browser allows only six connections per host, shared by every tab. A hidden tab lets its
// stream go (unless it is to notify when a job is done) and opens a fresh one, which starts
// with the full state, when it is shown again.
const ACTIVE = new Set(["queued", "in_progress"]);
const TOAST_KEY = "moviola.toast";

const jobs = new Map(); // id → the latest state this page knows
const pageTitle = document.title;

export function words(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s left`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `about ${minutes} min left` : `about ${(seconds / 3600).toFixed(1)} h left`;
}

const shownStatus = (status) => status.replace("_", " ");
const selector = (attribute, id) => `[${attribute}="${CSS.escape(id)}"]`;

function showBox(box, job) {
  const active = ACTIVE.has(job.status);
  const field = (name) => box.querySelector(`[data-field="${name}"]`);
  const set = (name, text) => {
    const found = field(name);
    if (found && found.textContent !== text) found.textContent = text;
  };
  box.dataset.status = job.status;
  const badge = field("status");
  if (badge) {
    badge.className = `badge ${job.status}`;
    set("status", shownStatus(job.status));
  }
  const percent = job.status === "completed" ? 100 : job.progress ?? 0;
  const bar = box.querySelector("progress");
  if (bar) {
    bar.value = percent;
    bar.textContent = `${percent}%`;
    bar.hidden = !active && job.status !== "completed";
  }
  set("label", job.label || "");
  set("percent", job.status === "in_progress" || job.status === "completed" ? `${percent}%` : "");
  set("position", job.position ? `#${job.position} in the queue` : "");
  set("eta", active ? words(job.eta_s) : job.error || "");
  showPreview(field("preview"), active ? job.preview : null);
  if (!active) {
    box.querySelector("form.cancel")?.remove();
    box.querySelector(".cancelling")?.remove();
    box.querySelector("[data-notify]")?.remove();
  }
}

// A new preview is shown once it has loaded: the old one stays until then, never a blank.
function showPreview(image, url) {
  if (!image) return;
  if (!url) {
    image.hidden = true;
    return;
  }
  if (image.dataset.wanted === url) return;
  image.dataset.wanted = url;
  const next = new Image();
  next.onload = () => {
    if (image.dataset.wanted !== url) return;
    image.src = url;
    image.hidden = false;
  };
  next.src = url;
}

// Every place the page shows this job: its live boxes, and the badges and words elsewhere.
export function render(job) {
  for (const box of document.querySelectorAll(selector("data-job", job.id))) showBox(box, job);
  for (const badge of document.querySelectorAll(selector("data-badge-of", job.id))) {
    badge.className = `badge ${job.status}`;
    badge.textContent = shownStatus(job.status);
  }
  for (const text of document.querySelectorAll(selector("data-words-of", job.id))) {
    text.textContent = shownStatus(job.status);
  }
}

// A card whose job ended becomes the card the library draws for it now: the finished video
// (thumbnail, hover scrubbing), or the failure, without a reload.
async function refreshCard(id) {
  const card = document.querySelector(`li.card${selector("data-id", id)}`);
  if (!card) return;
  const response = await fetch(`/videos/${encodeURIComponent(id)}/card`, { credentials: "same-origin" });
  if (!response.ok) return;
  const holder = document.createElement("template");
  holder.innerHTML = await response.text();
  const fresh = holder.content.querySelector("li.card");
  if (!fresh) return;
  const picked = card.querySelector(".pick")?.checked;
  if (picked) fresh.querySelector(".pick")?.setAttribute("checked", "");
  card.replaceWith(fresh);
}

// Progress in the tab's title while a job of the page runs: "42% · prompt · Moviola", or
// "waiting · …" while its jobs are all queued.
function showTitle() {
  const running = [...jobs.values()].filter((job) => job.status === "in_progress");
  if (!running.length) {
    const waiting = [...jobs.values()].some((job) => job.status === "queued");
    document.title = waiting ? `waiting · ${pageTitle}` : pageTitle;
    return;
  }
  const mean = Math.round(running.reduce((sum, job) => sum + (job.progress ?? 0), 0) / running.length);
  const count = running.length > 1 ? ` · ${running.length} videos` : "";
  document.title = `${mean}%${count} · ${pageTitle}`;
}

// "Done": a system notification where the user allowed them, otherwise a toast on the page.
function announce(job) {
  const what = { completed: "Done", cancelled: "Cancelled", failed: "Failed" }[job.status];
  if (!what) return;
  const text = `${what}: ${job.title || job.id}`;
  const href = `/videos/${job.id}`;
  if (notifying()) {
    try {
      const note = new Notification("Moviola", { body: text, tag: job.id });
      note.onclick = () => {
        window.focus();
        location.assign(href);
      };
      return;
    } catch {
      // Some browsers allow notifications only from a service worker: the toast it is.
    }
  }
  toast(text, location.pathname === href ? null : href);
}

export function toast(text, href = null) {
  let shelf = document.getElementById("toasts");
  if (!shelf) {
    shelf = document.createElement("div");
    shelf.id = "toasts";
    shelf.className = "toasts";
    shelf.setAttribute("role", "status");
    document.body.append(shelf);
  }
  const note = document.createElement(href ? "a" : "p");
  note.className = "toast";
  note.textContent = text;
  if (href) note.href = href;
  shelf.append(note);
  // The newest two only: a batch finishing together must not cover the feed.
  while (shelf.children.length > 2) shelf.firstElementChild.remove();
  setTimeout(() => note.remove(), 6000);
}

// A toast kept across the reload that brings a finished video's player.
const kept = sessionStorage.getItem(TOAST_KEY);
if (kept) {
  sessionStorage.removeItem(TOAST_KEY);
  toast(kept);
}

const notifying = () => "Notification" in window && Notification.permission === "granted";

function update(job) {
  const before = jobs.get(job.id);
  jobs.set(job.id, job);
  render(job);
  showTitle();
  if (!before || !ACTIVE.has(before.status) || ACTIVE.has(job.status)) return;
  // On a video's own page, a finished job is replaced by its player (or its error).
  if (document.querySelector(`[data-reload-when-done] ${selector("data-job", job.id)}`)) {
    stop();
    if (notifying()) announce(job);
    else if (job.status === "completed") sessionStorage.setItem(TOAST_KEY, `Done: ${job.title || job.id}`);
    location.reload();
    return;
  }
  announce(job);
  if (job.status !== "deleted") refreshCard(job.id);
}

// "Notify me when it is done": the browser asks for permission only after this click. The
// permission is the site's, so one button (the first running job's) is enough for a page.
function setUpNotifyButtons() {
  let askable = "Notification" in window && Notification.permission === "default";
  for (const button of document.querySelectorAll("[data-notify]")) {
    button.hidden = !askable || !ACTIVE.has(button.closest("[data-job]")?.dataset.status);
    askable &&= button.hidden;
    if (button.dataset.ready) continue;
    button.dataset.ready = "1";
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      setUpNotifyButtons();
    });
  }
}

let source = null;

function stop() {
  source?.close();
  source = null;
}

export function watchJobs() {
  stop();
  setUpNotifyButtons();
  const boxes = [...document.querySelectorAll("[data-job]")].filter((b) => ACTIVE.has(b.dataset.status));
  for (const box of boxes) {
    if (!jobs.has(box.dataset.job)) {
      const progress = Number(box.querySelector("progress")?.value ?? 0);
      jobs.set(box.dataset.job, { id: box.dataset.job, status: box.dataset.status, progress });
    }
  }
  showTitle();
  if ((document.hidden && !notifying()) || !window.EventSource) return;
  const ids = [...new Set(boxes.map((b) => b.dataset.job))];
  if (!ids.length) return;
  const url = "/studio/events?" + ids.map((id) => `id=${encodeURIComponent(id)}`).join("&");
  const mine = (source = new EventSource(url));
  mine.addEventListener("job", (event) => update(JSON.parse(event.data)));
  mine.addEventListener("done", () => {
    if (source === mine) stop();
  });
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    if (!notifying()) stop(); // kept open only to say when a job is done
  } else if (!source) {
    watchJobs();
  }
});
