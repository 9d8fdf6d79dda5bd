// The Create page: a draft that survives reloads, presets that fill the size, seed, image drops.
const form = document.getElementById("create");
const models = JSON.parse(document.getElementById("model-data").textContent);
const picker = document.getElementById("model");
const size = document.getElementById("size");
const DRAFT = "moviola.draft.create.";
const KEPT = ["prompt", "negative_prompt", "size", "seconds", "seed", "steps", "guidance", "model", "audio"];
const hadError = form.hasAttribute("data-had-error");
// After an error the server sends back what was typed, and "try again" an earlier video's
// values: those win over an older draft.
const fromServer = hadError || new URLSearchParams(location.search).has("from");

for (const name of KEPT) {
  const field = form.elements[name];
  const saved = localStorage.getItem(DRAFT + name);
  if (!fromServer && saved !== null) {
    if (field.tagName !== "SELECT" || [...field.options].some((o) => o.value === saved && !o.disabled)) {
      field.value = saved;
    }
  }
  field.addEventListener("input", () => localStorage.setItem(DRAFT + name, field.value));
  field.addEventListener("change", () => localStorage.setItem(DRAFT + name, field.value));
}
form.elements.prompt.dispatchEvent(new Event("input"));

function current() {
  return models.find((m) => m.name === picker.value) || models[0];
}

function describe() {
  const m = current();
  document.getElementById("model-can").textContent =
    `${m.label}: starts from ${m.can.join(", ")}; ${m.fps} fps` + (m.installed ? "" : " — not installed");
}
picker.addEventListener("change", describe);
describe();

// LoRAs: only those that fit the chosen model are shown (and sent), at most four chosen.
const loraBox = document.getElementById("loras");
const loraRows = [...loraBox.querySelectorAll(".lora-choice")];
const loraHint = document.getElementById("loras-hint");
const loraHintText = loraHint.textContent;

function showLoras() {
  let shown = 0;
  for (const row of loraRows) {
    const fits = row.dataset.models.split(" ").includes(picker.value);
    row.hidden = !fits;
    for (const input of row.querySelectorAll("input")) input.disabled = !fits;
    shown += fits;
  }
  if (loraRows.length) {
    loraHint.textContent = shown ? loraHintText : `No LoRA in the library fits ${current().label}.`;
  }
  limitLoras();
}

function limitLoras() {
  const boxes = loraRows.filter((row) => !row.hidden).map((row) => row.querySelector("[type=checkbox]"));
  const full = boxes.filter((box) => box.checked).length >= Number(loraBox.dataset.max);
  for (const box of boxes) box.disabled = full && !box.checked;
}
picker.addEventListener("change", showLoras);
loraBox.addEventListener("change", limitLoras);
showLoras();
if (!size.value) size.value = current().sizes.landscape;

for (const button of document.querySelectorAll("[data-aspect]")) {
  button.addEventListener("click", () => {
    size.value = current().sizes[button.dataset.aspect];
    size.dispatchEvent(new Event("input"));
    for (const b of document.querySelectorAll("[data-aspect]")) b.setAttribute("aria-pressed", b === button);
  });
}

document.getElementById("seed-random").addEventListener("click", () => {
  form.elements.seed.value = "";
  form.elements.seed.dispatchEvent(new Event("input"));
});

// The images (the start, and the end for a first-and-last-frame model): chosen or dropped,
// previewed, and kept for this tab so an error costs nothing.
function imageDrop(name, zone, describe) {
  const input = document.getElementById(name);
  const preview = document.getElementById(`${name}-preview`);
  const drop = document.getElementById(zone);
  const kept = `moviola.${name}`;

  function showPreview(file) {
    if (!file) {
      preview.hidden = true;
      return;
    }
    preview.src = URL.createObjectURL(file);
    preview.alt = `${describe}: ${file.name}`;
    preview.hidden = false;
  }

  function keep(file) {
    const reader = new FileReader();
    reader.onload = () => {
      try {
        sessionStorage.setItem(kept, JSON.stringify({ name: file.name, type: file.type, data: reader.result }));
      } catch {
        // Too large for session storage: it is still in the form, only not kept across an error.
      }
    };
    reader.readAsDataURL(file);
  }

  input.addEventListener("change", () => {
    showPreview(input.files[0]);
    if (input.files[0]) keep(input.files[0]);
  });

  for (const event of ["dragenter", "dragover"]) {
    drop.addEventListener(event, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (!file) return;
    const list = new DataTransfer();
    list.items.add(file);
    input.files = list.files;
    input.dispatchEvent(new Event("change"));
  });

  if (hadError) {
    const saved = JSON.parse(sessionStorage.getItem(kept) || "null");
    if (saved) {
      const bytes = Uint8Array.from(atob(saved.data.split(",")[1]), (c) => c.charCodeAt(0));
      const list = new DataTransfer();
      list.items.add(new File([bytes], saved.name, { type: saved.type }));
      input.files = list.files;
      showPreview(input.files[0]);
    }
  } else {
    sessionStorage.removeItem(kept);
  }
}

imageDrop("image", "drop", "Start image");
imageDrop("last_frame", "last-drop", "End image");
if (hadError) document.querySelector("[aria-invalid=true]")?.focus();
