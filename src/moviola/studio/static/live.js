// Live progress: at most one EventSource per page, for the jobs it shows; the server pushes
// changes. More cards (infinite scroll) replace the stream rather than add one: a browser allows
// only six connections per host, shared by every tab. A hidden tab lets its stream go, and
// opens a fresh one (which starts with the full state) when it is shown again.
const ACTIVE = new Set(["queued", "in_progress"]);

function words(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}

function show(box, job) {
  box.dataset.status = job.status;
  const set = (name, text) => {
    const field = box.querySelector(`[data-field="${name}"]`);
    if (field) field.textContent = text;
  };
  const bar = box.querySelector("progress");
  if (bar) {
    bar.value = job.status === "completed" ? 100 : job.progress ?? 0;
    bar.textContent = `${bar.value}%`;
  }
  set("status", job.status.replace("_", " "));
  set("stage", (job.stage || "").replace("_", " "));
  set("percent", `${job.status === "completed" ? 100 : job.progress ?? 0}%`);
  set("position", job.position ? `#${job.position} in the queue` : "");
  set("eta", ACTIVE.has(job.status) ? words(job.eta_s) : "");
  if (!ACTIVE.has(job.status)) {
    box.querySelector("form.cancel")?.remove();
    if (job.error) set("eta", job.error);
  }
}

let source = null;

function stop() {
  source?.close();
  source = null;
}

export function watchJobs() {
  stop();
  if (document.hidden || !window.EventSource) return;
  const boxes = [...document.querySelectorAll("[data-job]")].filter((b) => ACTIVE.has(b.dataset.status));
  const ids = [...new Set(boxes.map((b) => b.dataset.job))];
  if (!ids.length) return;
  const url = "/studio/events?" + ids.map((id) => `id=${encodeURIComponent(id)}`).join("&");
  const mine = (source = new EventSource(url));
  mine.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    for (const box of document.querySelectorAll(`[data-job="${job.id}"]`)) {
      show(box, job);
      // On a video's own page, a finished job is replaced by its player (or its error).
      if (!ACTIVE.has(job.status) && box.closest("[data-reload-when-done]")) {
        stop();
        location.reload();
      }
    }
  });
  mine.addEventListener("done", () => {
    if (source === mine) stop();
  });
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) stop();
  else watchJobs();
});
