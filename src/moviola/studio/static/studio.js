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

// A video was just made from the Create page: its draft has served its purpose.
if (document.body.hasAttribute("data-created")) {
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith("moviola.draft.")) localStorage.removeItem(key);
  }
  sessionStorage.removeItem("moviola.image");
  sessionStorage.removeItem("moviola.storyboard.images");
}

setUpGrowing();
setUpCopying();
setUpConfirming();
watchJobs();
