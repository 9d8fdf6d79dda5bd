// The Favourite toggle (`_favourite.html`): sent with fetch and flipped in place, so a playing
// video or a scrolled feed is left as it was. Without scripts the form posts and comes back.
import { csrf } from "./studio.js";

function show(form, on) {
  const button = form.querySelector("button");
  button.setAttribute("aria-pressed", String(on));
  button.title = on ? "Favourite: yes (press to remove)" : "Add to favourites";
  form.querySelector(".star").textContent = on ? "★" : "☆";
  form.querySelector("[name=on]").value = on ? "0" : "1";
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-favourite]");
  if (!form) return;
  event.preventDefault();
  const button = form.querySelector("button");
  if (button.hasAttribute("aria-busy")) return; // the last press is still on its way
  const body = new FormData(form);
  if (!body.get("csrf")) body.set("csrf", csrf());
  // Pressed shows what is stored: it flips once the server has it (a moment, on this server).
  button.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { accept: "application/json" },
    });
    if (response.ok) show(form, (await response.json()).favourite);
  } finally {
    button.removeAttribute("aria-busy");
  }
});
