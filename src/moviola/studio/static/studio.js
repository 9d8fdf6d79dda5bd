// Shared by every page: growing text boxes, copy buttons, confirmations, live progress.
import { watchJobs } from "./live.js";

export const csrf = () => document.body.dataset.csrf || "";

function grow(area) {
  area.style.height = "auto";
  area.style.height = `${area.scrollHeight + 2}px`;
}

export function setUpGrowing(root = document) {
  for (const area of root.querySelectorAll("textarea[data-grow]")) {
    if (area.dataset.growing) continue;
    area.dataset.growing = "1";
    area.addEventListener("input", () => grow(area));
    grow(area);
  }
}

function setUpCopying() {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    const text = source.value ?? source.textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without clipboard access (a plain-HTTP origin other than localhost), select it instead.
      const range = document.createRange();
      range.selectNodeContents(source);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1500);
  });
}

function setUpConfirming() {
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset.confirm;
    if (message && !event.target.dataset.confirmed && !confirm(message)) event.preventDefault();
  });
}

// A form answered with its errors: show the page it was on, not the URL it was posted to.
const address = document.body.dataset.address;
if (address && address !== location.pathname + location.search) {
  history.replaceState(null, "", address);
}

// A video was just made from the Create page: its draft has served its purpose.
if (document.body.hasAttribute("data-created")) {
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith("moviola.draft.")) localStorage.removeItem(key);
  }
  sessionStorage.removeItem("moviola.image");
  sessionStorage.removeItem("moviola.storyboard.images");
}

// Create and Storyboard: say what sound the chosen model and option give.
function setUpSoundHint() {
  const hint = document.getElementById("audio-hint");
  const data = document.getElementById("model-data");
  const picker = document.getElementById("model");
  const audio = document.getElementById("audio");
  if (!hint || !data || !picker || !audio) return;
  const models = JSON.parse(data.textContent);
  const say = () => {
    const m = models.find((x) => x.name === picker.value);
    if (!m) {
      hint.textContent = ""; // no model installed yet
      return;
    }
    hint.textContent = {
      auto: m.audio ? `${m.label} makes its sound with the picture.` : `${m.label} makes no sound: the video will be silent.`,
      soundtrack: "A text-to-audio model makes a soundtrack from the prompt, as long as the video.",
      none: "No sound.",
    }[audio.value];
  };
  picker.addEventListener("change", say);
  audio.addEventListener("change", say);
  say();
}

setUpGrowing();
setUpSoundHint();
setUpCopying();
setUpConfirming();
watchJobs();
