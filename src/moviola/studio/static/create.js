// The composer (Create, and the top of the home page): a draft that survives reloads, chips
// that set the size and duration within the chosen model's limits, example and recent prompts,
// style and camera presets, Ctrl/Cmd+Enter, seed, image drops, and the assistant's Improve.
import { onAction, send } from "./assistant.js";

const form = document.getElementById("create");
const models = JSON.parse(document.getElementById("model-data").textContent);
const picker = document.getElementById("model");
const size = document.getElementById("size");
const DRAFT = "moviola.draft.create.";
const KEPT = ["prompt", "negative_prompt", "size", "seconds", "seed", "steps", "guidance", "model", "audio", "original_prompt", "prompt_variants"];
const hadError = form.hasAttribute("data-had-error");
// After an error the server sends back what was typed, and "try again" an earlier video's
// values: those win over an older draft.
const fromServer = hadError || new URLSearchParams(location.search).has("from");
// A model named in the address ("Use on Create", a model just installed) wins over the draft's.
const modelAsked = new URLSearchParams(location.search).has("model");

for (const name of KEPT) {
  const field = form.elements[name];
  const saved = localStorage.getItem(DRAFT + name);
  if (!fromServer && saved !== null && !(name === "model" && modelAsked)) {
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
  // No model installed yet: nothing to describe (the first-run card says what to do).
  document.getElementById("model-can").textContent = picker.value
    ? `${m.label}: starts from ${m.can.join(", ")}; ${m.fps} fps`
    : "";
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

// Aspect and duration chips: each sets #size or #seconds to what the chosen model makes; a chip
// the model cannot do is disabled. A chip is pressed while its field holds its value.
const seconds = form.elements.seconds;
const aspectChips = [...form.querySelectorAll("[data-aspect]")];
const durationChips = [...form.querySelectorAll("[data-seconds]")];
const secondsLimits = document.getElementById("seconds-limits");

function set(field, value) {
  field.value = value;
  field.dispatchEvent(new Event("input")); // kept in the draft, and the chips follow
}

function showChips() {
  const m = current();
  for (const chip of aspectChips) {
    const own = m.aspects[chip.dataset.aspect];
    chip.disabled = !own;
    chip.title = own ? `${own}` : `${m.label} makes no ${chip.dataset.aspect} video`;
    chip.setAttribute("aria-pressed", String(Boolean(own) && own === size.value.trim()));
  }
  for (const chip of durationChips) {
    const value = Number(chip.dataset.seconds);
    chip.disabled = value > m.max_seconds;
    chip.setAttribute("aria-pressed", String(!chip.disabled && Number(seconds.value) === value));
  }
  secondsLimits.textContent = picker.value ? `up to ${m.max_seconds} s` : "";
}

// A size or duration the new model cannot make is replaced: the size by the model's own of the
// same aspect (else its first), the duration by its default.
function fit() {
  const m = current();
  const own = Object.values(m.aspects);
  if (!own.includes(size.value.trim())) {
    const [w, h] = size.value.split("x").map(Number);
    const aspect = !(w && h) ? "" : h > w ? "portrait" : w > h ? "landscape" : "square";
    set(size, m.aspects[aspect] || m.default_size);
  }
  const asked = Number(seconds.value);
  if (!(asked >= m.min_seconds && asked <= m.max_seconds)) set(seconds, String(m.default_seconds));
}

for (const chip of aspectChips) {
  chip.addEventListener("click", () => set(size, current().aspects[chip.dataset.aspect]));
}
for (const chip of durationChips) chip.addEventListener("click", () => set(seconds, chip.dataset.seconds));
for (const field of [size, seconds]) field.addEventListener("input", showChips);
picker.addEventListener("change", () => {
  if (picker.value) fit();
  showChips();
});
if (!size.value && picker.value) set(size, current().default_size);
showChips();

// Ctrl/Cmd+Enter in the prompt sends the form, as the Create button would.
form.elements.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

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

// Improve: the assistant writes the idea out as a prompt for the chosen model, with three
// variants offered as chips. The idea is kept (restorable, and sent with the form so the
// video keeps it); the versions travel in a hidden field so an error page keeps them too.
const improveButton = document.getElementById("improve-button");
const improved = document.getElementById("improved");
const ideaShown = document.getElementById("improve-idea");
const versionsBox = document.getElementById("improve-versions");
const improveStatus = document.getElementById("improve-status");
const improveError = document.getElementById("improve-error");
const original = form.elements.original_prompt;
const versionsField = form.elements.prompt_variants;
const prompt = form.elements.prompt;

function setPrompt(text) {
  prompt.value = text;
  prompt.dispatchEvent(new Event("input")); // kept in the draft, and the box grows
}

function showVersions() {
  for (const field of [original, versionsField]) field.dispatchEvent(new Event("input")); // the draft
  const versions = JSON.parse(versionsField.value || "[]");
  improved.hidden = !original.value;
  ideaShown.textContent = original.value;
  versionsBox.replaceChildren(
    ...versions.map((text, index) => {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      if (index > 0) chip.dataset.variant = String(index);
      chip.setAttribute("aria-pressed", String(text === prompt.value));
      chip.title = text;
      const label = document.createElement("span");
      label.className = "chip-label";
      label.textContent = index === 0 ? "Written" : `Variant ${index}`;
      const excerpt = document.createElement("span");
      excerpt.className = "chip-text";
      excerpt.textContent = text;
      chip.append(label, excerpt);
      chip.addEventListener("click", () => {
        setPrompt(text);
        showVersions();
      });
      return chip;
    }),
  );
}

function forget() {
  original.value = "";
  versionsField.value = "";
  showVersions();
}

improveButton.addEventListener("click", async () => {
  const idea = prompt.value;
  improveError.hidden = true;
  if (!idea.trim()) {
    improveError.textContent = "Write an idea in the prompt first.";
    improveError.hidden = false;
    prompt.focus();
    return;
  }
  improveButton.disabled = true;
  improveButton.setAttribute("aria-busy", "true");
  improveStatus.textContent = "Writing the prompt…";
  try {
    const response = await send("/studio/assistant/prompts", { prompt: idea, model: picker.value });
    const written = await response.json();
    // Improving an improved prompt still keeps the first idea.
    if (!original.value || !JSON.parse(versionsField.value || "[]").includes(idea)) original.value = idea;
    versionsField.value = JSON.stringify([written.prompt, ...written.variants]);
    setPrompt(written.prompt);
    showVersions();
    improveStatus.textContent = "Done: the prompt is the written one; pick a variant or restore your idea below.";
  } catch (err) {
    improveStatus.textContent = "";
    improveError.textContent = err.message;
    improveError.hidden = false;
  } finally {
    improveButton.disabled = false;
    improveButton.removeAttribute("aria-busy");
  }
});

// A prompt cleared is a new start: the idea it came from no longer applies.
prompt.addEventListener("input", () => {
  if (!prompt.value.trim() && original.value) forget();
});

document.getElementById("improve-restore").addEventListener("click", () => {
  setPrompt(original.value);
  forget();
  improveStatus.textContent = "Your idea is back in the prompt.";
  prompt.focus();
});
showVersions();

// The assistant panel's "Fill the prompt", once applied.
onAction("fill_prompt", (action) => {
  forget();
  setPrompt(action.prompt);
  prompt.focus();
});

// Example prompts, shown while the prompt is empty, and the creator's recent prompts: a click
// puts one in the prompt.
const examples = document.getElementById("examples");
function showExamples() {
  examples.hidden = Boolean(prompt.value.trim());
}
for (const chip of form.querySelectorAll("[data-example], [data-recent]")) {
  chip.addEventListener("click", () => {
    forget();
    setPrompt(chip.dataset.example ?? chip.dataset.recent);
    prompt.focus();
  });
}

// Style and camera presets: choosing one adds its words to the prompt (where they stay, to
// edit) and sets its settings in the form; choosing it again takes the words back out.
const presets = JSON.parse(document.getElementById("preset-data").textContent);
const presetChips = [...form.querySelectorAll("[data-preset]")];
const FOLDED = { negative_prompt: ".advanced", steps: ".advanced", guidance: ".advanced" };

function showPresets() {
  for (const chip of presetChips) {
    const addition = presets[Number(chip.dataset.preset)].addition;
    chip.setAttribute("aria-pressed", String(Boolean(addition) && prompt.value.includes(addition)));
  }
}

for (const chip of presetChips) {
  chip.addEventListener("click", () => {
    const preset = presets[Number(chip.dataset.preset)];
    const text = prompt.value.trimEnd();
    if (preset.addition && text.includes(preset.addition)) {
      setPrompt(text.replace(`, ${preset.addition}`, "").replace(preset.addition, "").trim());
    } else {
      if (preset.addition) setPrompt(text ? `${text.replace(/[,.]$/, "")}, ${preset.addition}` : preset.addition);
      for (const [name, value] of Object.entries(preset.params)) {
        set(form.elements[name], String(value));
        // A setting out of sight is shown, so what the preset changed can be seen.
        document.getElementById("more-options").open = true;
        if (FOLDED[name]) form.querySelector(FOLDED[name]).open = true;
      }
    }
    showPresets();
  });
}
prompt.addEventListener("input", () => {
  showExamples();
  showPresets();
});
showExamples();
showPresets();
