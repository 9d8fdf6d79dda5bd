// The video page: the player (its shape, looping silently, arrow keys seek), the Download menu,
// the Favourite toggle, the rating, and the assistant's remix.
import { onAction, send } from "./assistant.js";
import "./favourite.js";

const player = document.getElementById("player");
if (player) {
  // Its box takes the video's own shape (the CSS reads --ratio), before the video has loaded.
  if (player.width && player.height) player.style.setProperty("--ratio", String(player.width / player.height));
  // It loops on its own, silently (its controls unmute it), unless the viewer asks for less motion.
  if (player.hasAttribute("data-autoplay") && !matchMedia("(prefers-reduced-motion: reduce)").matches) {
    player.muted = true;
    player.play().catch(() => {}); // a browser that refuses autoplay leaves the play button to the viewer
  }
  player.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") player.currentTime = Math.min(player.duration, player.currentTime + 1 / 8);
    else if (event.key === "ArrowLeft") player.currentTime = Math.max(0, player.currentTime - 1 / 8);
    else return;
    event.preventDefault();
  });
}

// The Download menu closes once a file is chosen, or on a click or Escape elsewhere.
const downloads = document.getElementById("download");
if (downloads) {
  document.addEventListener("click", (event) => {
    if (downloads.open && (!downloads.contains(event.target) || event.target.closest("a"))) downloads.open = false;
  });
  downloads.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !downloads.open) return;
    downloads.open = false;
    downloads.querySelector("summary").focus();
  });
}

// The rating: sent without leaving the page (a playing video plays on). Each thumb, pressed,
// sets that rating, and pressed again clears it; the note is saved with the rating as it is.

const rating = document.getElementById("rating-form");
if (rating) {
  const status = document.getElementById("rating-status");
  const thumbs = [...rating.querySelectorAll("[data-rate=up], [data-rate=down]")];
  const saveNote = rating.querySelector("[data-rate=note]");

  function show(rated) {
    rating.dataset.rated = rated;
    for (const thumb of thumbs) {
      const on = thumb.dataset.rate === rated;
      thumb.setAttribute("aria-pressed", String(on));
      thumb.value = on ? "" : thumb.dataset.rate;
    }
    saveNote.value = rated;
  }

  rating.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = event.submitter?.value ?? rating.dataset.rated;
    status.textContent = "Saving…";
    try {
      const response = await send(rating.action, { rating: chosen, note: rating.elements.note.value });
      const saved = await response.json();
      show(saved.rating || "");
      status.textContent = { up: "Liked.", down: "Disliked." }[saved.rating] || (saved.note ? "Note saved." : "Not rated.");
    } catch (err) {
      status.textContent = err.message;
    }
  });
}

// The assistant panel's "Remix this video with …", once applied: the remix form, sent.
onAction("remix", (action) => {
  const remix = document.getElementById("remix-form");
  remix.elements.prompt.value = action.prompt;
  remix.closest("details").open = true;
  remix.requestSubmit();
});
