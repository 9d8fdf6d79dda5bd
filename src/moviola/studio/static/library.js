// The library: spritesheet scrubbing on hover, selection for delete/download, infinite scroll.
import { watchJobs } from "./live.js";

const cards = document.getElementById("cards");

function scrub(thumb, event) {
  const columns = Number(thumb.dataset.columns);
  const rows = Number(thumb.dataset.rows);
  const count = Number(thumb.dataset.count);
  const box = thumb.getBoundingClientRect();
  const at = Math.min(count - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * count)));
  const column = at % columns;
  const row = Math.floor(at / columns);
  thumb.style.backgroundImage = `url("${thumb.dataset.sprite}")`;
  thumb.style.backgroundSize = `${columns * 100}% ${rows * 100}%`;
  thumb.style.backgroundPosition = `${columns > 1 ? (column / (columns - 1)) * 100 : 0}% ${rows > 1 ? (row / (rows - 1)) * 100 : 0}%`;
  thumb.classList.add("scrubbing");
}

if (cards) {
  cards.addEventListener("pointermove", (event) => {
    const thumb = event.target.closest(".thumb[data-sprite]");
    if (thumb) scrub(thumb, event);
  });
  cards.addEventListener("pointerout", (event) => {
    const thumb = event.target.closest(".thumb[data-sprite]");
    if (thumb && !thumb.contains(event.relatedTarget)) thumb.classList.remove("scrubbing");
  });
}

const picked = () => [...document.querySelectorAll(".pick:checked")].map((box) => box.value);
const count = document.getElementById("picked");
const deleteButton = document.getElementById("delete-picked");
const downloadButton = document.getElementById("download-picked");

document.addEventListener("change", (event) => {
  if (!event.target.matches(".pick")) return;
  const n = picked().length;
  count.textContent = `${n} selected`;
  deleteButton.disabled = downloadButton.disabled = n === 0;
  event.target.closest(".card").classList.toggle("picked", event.target.checked);
});

downloadButton.addEventListener("click", () => {
  location.href = "/library/download?" + picked().map((id) => `id=${encodeURIComponent(id)}`).join("&");
});

// Infinite scroll: the "Older videos" link is replaced by the next page when it comes into view
// (it stays a plain link without scripts).
async function loadMore(link) {
  const url = new URL(link.href);
  url.searchParams.set("fragment", "1");
  const response = await fetch(url, { credentials: "same-origin" });
  // The session ended (signed out elsewhere, or the key revoked): to the sign-in page, and
  // back to this library afterwards, rather than a sign-in form among the cards.
  if (response.redirected && new URL(response.url).pathname === "/signin") {
    location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
    return;
  }
  if (!response.ok) return;
  const holder = document.createElement("template");
  holder.innerHTML = await response.text();
  link.closest("li").replaceWith(holder.content);
  watchJobs();
  observeMore();
}

const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.isIntersecting) {
      observer.unobserve(entry.target);
      loadMore(entry.target);
    }
  }
}, { rootMargin: "400px" });

function observeMore() {
  const link = cards?.querySelector("[data-more]");
  if (link) observer.observe(link);
}
observeMore();
