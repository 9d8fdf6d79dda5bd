// Model installs, live: the server pushes each install's state (Server-Sent Events) while any
// is running; the page only listens. When one ends, the page is drawn again (with its new
// size, buttons and picker), or, for the first-run card, Create opens with the new model.
const RUNNING = new Set(["preparing", "downloading"]);

function show(box, state) {
  const was = box.dataset.status;
  box.dataset.status = state.status;
  const area = box.querySelector('[data-field="install"]');
  if (area) area.hidden = state.status === "none" || state.status === "installed";
  const bar = box.querySelector('[data-field="install"] progress');
  if (bar) {
    bar.value = state.percent;
    bar.textContent = `${state.percent}%`;
  }
  const badge = box.querySelector('[data-field="status"]');
  if (badge) {
    badge.textContent = state.status.replace("_", " ");
    badge.className = `badge ${state.status}`;
  }
  const line = box.querySelector('[data-field="line"]');
  if (line) line.textContent = state.line;
  return RUNNING.has(was) && !RUNNING.has(state.status);
}

let source = null;

function stop() {
  source?.close();
  source = null;
}

function watch() {
  stop();
  const boxes = [...document.querySelectorAll("[data-install]")];
  if (document.hidden || !window.EventSource || !boxes.some((b) => RUNNING.has(b.dataset.status))) return;
  const mine = (source = new EventSource("/settings/models/events"));
  mine.addEventListener("install", (event) => {
    const state = JSON.parse(event.data);
    for (const box of document.querySelectorAll(`[data-install="${CSS.escape(state.model)}"]`)) {
      if (!show(box, state)) continue;
      stop();
      if (state.status === "installed" && box.dataset.done) location.assign(box.dataset.done);
      else location.reload();
      return;
    }
  });
  mine.addEventListener("done", () => {
    if (source === mine) stop();
  });
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) stop();
  else watch();
});
watch();
