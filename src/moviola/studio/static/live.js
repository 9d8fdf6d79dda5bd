// Live progress: one EventSource per page for the jobs it shows; the server pushes changes.
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

export function watchJobs(root) {
  const boxes = [...root.querySelectorAll("[data-job]")].filter((b) => ACTIVE.has(b.dataset.status));
  if (!boxes.length || !window.EventSource) return;
  const ids = boxes.map((b) => b.dataset.job);
  const url = "/studio/events?" + ids.map((id) => `id=${encodeURIComponent(id)}`).join("&");
  const source = new EventSource(url);
  source.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    for (const box of document.querySelectorAll(`[data-job="${job.id}"]`)) {
      show(box, job);
      // On a video's own page, a finished job is replaced by its player (or its error).
      if (!ACTIVE.has(job.status) && box.closest("[data-reload-when-done]")) {
        source.close();
        location.reload();
      }
    }
  });
  source.addEventListener("done", () => source.close());
}
