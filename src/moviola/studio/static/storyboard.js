// The storyboard: shots are edited in place — reordered, duplicated, removed — before rendering.
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
