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
