// The video page: keyboard shortcuts for the player (space plays, arrows seek), the rating,
// and the assistant's remix.
import { onAction, send } from "./assistant.js";

const player = document.getElementById("player");
if (player) {
  player.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") player.currentTime = Math.min(player.duration, player.currentTime + 1 / 8);
    else if (event.key === "ArrowLeft") player.currentTime = Math.max(0, player.currentTime - 1 / 8);
    else return;
    event.preventDefault();
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
