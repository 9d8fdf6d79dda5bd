// The storyboard: shots are edited in place — reordered, duplicated, removed — before rendering;
// the assistant writes them from a script, or adds those it proposes.
import { onAction, send } from "./assistant.js";
import { setUpGrowing } from "./studio.js";

const list = document.getElementById("shots");

function renumber() {
  [...list.children].forEach((shot, index) => {
    const n = index + 1;
    shot.querySelector("[data-number]").textContent = n;
    shot.querySelector(".shot-tools").setAttribute("aria-label", `Shot ${n}`);
    for (const label of shot.querySelectorAll("label[data-for]")) {
      const id = `${label.dataset.for}-${n}`;
      label.htmlFor = id;
      label.nextElementSibling.id = id;
    }
    shot.querySelector('[data-act="up"]').disabled = index === 0;
    shot.querySelector('[data-act="down"]').disabled = index === list.children.length - 1;
    shot.querySelector('[data-act="remove"]').disabled = list.children.length === 1;
  });
}

function copyOf(shot, blank) {
  const copy = shot.cloneNode(true);
  for (const error of copy.querySelectorAll(".error")) error.remove();
  for (const field of copy.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }
  copy.querySelector("textarea").removeAttribute("data-growing");
  const image = copy.querySelector('input[type="file"]');
  if (blank) {
    copy.querySelector("textarea").value = "";
    image.value = "";
    const hint = copy.querySelector("[data-image-hint]");
    hint.hidden = true;
    hint.textContent = "";
  } else {
    copy.querySelector("textarea").value = shot.querySelector("textarea").value;
    image.files = shot.querySelector('input[type="file"]').files;
  }
  return copy;
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("[data-act]");
  if (!button) return;
  const shot = button.closest(".shot");
  const act = button.dataset.act;
  if (act === "up" && shot.previousElementSibling) shot.previousElementSibling.before(shot);
  else if (act === "down" && shot.nextElementSibling) shot.nextElementSibling.after(shot);
  else if (act === "duplicate") shot.after(copyOf(shot, false));
  else if (act === "remove" && list.children.length > 1) {
    const next = shot.nextElementSibling || shot.previousElementSibling;
    shot.remove();
    next.querySelector("textarea").focus();
  }
  renumber();
  setUpGrowing(list);
  if (act !== "remove" && document.body.contains(button)) button.focus();
});

document.getElementById("add-shot").addEventListener("click", () => {
  const shot = copyOf(list.lastElementChild, true);
  list.append(shot);
  renumber();
  setUpGrowing(list);
  shot.querySelector("textarea").focus();
});

// Start images are kept for this tab when the form is sent, so that an error (which brings
// the form back from the server, without files) costs none of them.
const KEPT_IMAGES = "moviola.storyboard.images";
const form = document.getElementById("storyboard");
const readImages = new WeakMap(); // file input → {name, type, data} once read

function keepImage(input) {
  const file = input.files[0];
  if (!file) {
    readImages.delete(input);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => readImages.set(input, { name: file.name, type: file.type, data: reader.result });
  reader.readAsDataURL(file);
}

list.addEventListener("change", (event) => {
  if (event.target.matches('input[type="file"]')) keepImage(event.target);
});
list.addEventListener("click", (event) => {
  // A duplicated shot carries its original's image: read it for the copy too.
  if (event.target.closest('[data-act="duplicate"]')) {
    for (const input of list.querySelectorAll('input[type="file"]')) {
      if (input.files[0] && !readImages.has(input)) keepImage(input);
    }
  }
});
form.addEventListener("submit", () => {
  const images = [...list.querySelectorAll('input[type="file"]')].map((input) => readImages.get(input) || null);
  try {
    sessionStorage.setItem(KEPT_IMAGES, JSON.stringify(images));
  } catch {
    sessionStorage.removeItem(KEPT_IMAGES); // too large to keep: they are still sent
  }
});

if (form.hasAttribute("data-had-error")) {
  const images = JSON.parse(sessionStorage.getItem(KEPT_IMAGES) || "[]");
  [...list.querySelectorAll('input[type="file"]')].forEach((input, index) => {
    const kept = images[index];
    if (!kept) return;
    const bytes = Uint8Array.from(atob(kept.data.split(",")[1]), (c) => c.charCodeAt(0));
    const files = new DataTransfer();
    files.items.add(new File([bytes], kept.name, { type: kept.type }));
    input.files = files.files;
    readImages.set(input, kept);
  });
} else {
  sessionStorage.removeItem(KEPT_IMAGES);
}

// The size presets, as on the Create page.
const models = JSON.parse(document.getElementById("model-data").textContent);
const picker = document.getElementById("model");
const size = document.getElementById("size");
const current = () => models.find((m) => m.name === picker.value) || models[0];
if (!size.value) size.value = current().sizes.landscape;
for (const button of document.querySelectorAll("[data-aspect]")) {
  button.addEventListener("click", () => (size.value = current().sizes[button.dataset.aspect]));
}
renumber();

// Shots the assistant wrote, put in the editor: in place of those there (from a script) or
// after them (the panel's "Add shots"); an editor with nothing typed in it is replaced.
const shotsStatus = document.getElementById("shots-status");

function putShots(shots, { replace }) {
  const template = list.firstElementChild;
  const made = shots.map((written) => {
    const shot = copyOf(template, true);
    shot.querySelector("textarea").value = written.prompt;
    shot.querySelector('input[type="number"]').value = written.seconds;
    const hint = shot.querySelector("[data-image-hint]");
    hint.textContent = written.image_hint ? `A start image could show: ${written.image_hint}` : "";
    hint.hidden = !written.image_hint;
    return shot;
  });
  const blank = [...list.querySelectorAll("textarea")].every((area) => !area.value.trim());
  if (replace || blank) list.replaceChildren(...made);
  else list.append(...made);
  renumber();
  setUpGrowing(list);
  const n = shots.length;
  const what = n === 1 ? "1 shot" : `${n} shots`;
  shotsStatus.textContent = `${what} ${replace || blank ? "written" : "added"}: check ${n === 1 ? "it" : "them"}, then render.`;
}

// The characters the shots name, ticked (so each shot is conditioned on those it names).
function tickCharacters(ids) {
  if (!ids.length) return;
  for (const box of document.querySelectorAll("#characters input[type=checkbox]")) {
    box.checked = ids.includes(box.value);
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }
}

onAction("add_shots", (action) => {
  putShots(action.shots, { replace: false });
  list.lastElementChild.querySelector("textarea").focus();
});

// "From a script": the dialog, its counter, and its progress while the assistant writes.
const dialog = document.getElementById("script-dialog");
const scriptForm = document.getElementById("script-form");
const script = document.getElementById("script");
const count = document.getElementById("script-count");
const most = Number(count.dataset.max);
const progress = document.getElementById("script-progress");
const scriptError = document.getElementById("script-error");
const go = document.getElementById("script-go");
let running = null; // the request being made, to abort on Cancel

function counted() {
  count.textContent = `${script.value.length.toLocaleString("en")} / ${most.toLocaleString("en")} characters`;
}

document.getElementById("script-open").addEventListener("click", () => {
  dialog.showModal();
  script.focus();
});
document.getElementById("script-cancel").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => running?.abort());
script.addEventListener("input", counted);

scriptForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  scriptError.hidden = true;
  running = new AbortController();
  go.disabled = true;
  progress.hidden = false;
  try {
    const fields = { script: script.value, model: picker.value, seconds: scriptForm.elements.seconds.value };
    const board = await (await send("/studio/assistant/storyboards", fields, { signal: running.signal })).json();
    putShots(board.shots, { replace: true });
    tickCharacters(board.characters);
    dialog.close();
    list.querySelector("textarea").focus();
  } catch (err) {
    if (err.name !== "AbortError") {
      scriptError.textContent = err.message;
      scriptError.hidden = false;
    }
  } finally {
    running = null;
    go.disabled = false;
    progress.hidden = true;
  }
});
counted();
