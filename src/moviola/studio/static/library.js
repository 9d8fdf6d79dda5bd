// The home's feed: muted looping previews on hover (or, on a phone, of the card in view),
// selection for bulk actions, favourites toggled in place, infinite scroll.
import { watchJobs } from "./live.js";
import "./favourite.js";

const cards = document.getElementById("cards");
const still = matchMedia("(prefers-reduced-motion: reduce)");
const touch = matchMedia("(hover: none)");

// On a phone the filters are one "Filters" line until opened, unless one is on.
const moreFilters = document.getElementById("more-filters");
if (moreFilters && !moreFilters.hasAttribute("data-on") && matchMedia("(max-width: 640px)").matches) {
  moreFilters.open = false;
}

// --- previews ------------------------------------------------------------------------------

function play(thumb) {
  if (still.matches || thumb.querySelector("video")) return;
  const video = document.createElement("video");
  video.muted = true; // the property, not only the attribute: browsers play muted video only
  video.loop = true;
  video.playsInline = true;
  video.preload = "none";
  video.setAttribute("muted", "");
  video.setAttribute("aria-hidden", "true");
  video.src = thumb.dataset.preview;
  const picture = thumb.querySelector("img");
  if (picture) video.poster = picture.currentSrc || picture.src;
  thumb.append(video);
  video.play().catch(() => {}); // stopped before it started (the pointer left): nothing to do
}

function stop(thumb) {
  const video = thumb.querySelector("video");
  if (!video) return;
  video.pause();
  video.removeAttribute("src");
  video.load(); // lets go of the connection
  video.remove();
}

if (cards) {
  cards.addEventListener("pointerover", (event) => {
    const thumb = event.target.closest(".thumb[data-preview]");
    if (thumb && event.pointerType !== "touch") play(thumb);
  });
  cards.addEventListener("pointerout", (event) => {
    const thumb = event.target.closest(".thumb[data-preview]");
    if (thumb && !thumb.contains(event.relatedTarget)) stop(thumb);
  });
}

// On a touch screen: the (at most two) cards most in view play, as long as they stay so.
const MOST = 2;
const seen = new Map();
const inView = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.intersectionRatio >= 0.75) seen.set(entry.target, entry.intersectionRatio);
    else seen.delete(entry.target);
  }
  const chosen = [...seen].sort((a, b) => b[1] - a[1]).slice(0, MOST).map(([thumb]) => thumb);
  for (const thumb of cards.querySelectorAll(".thumb[data-preview]")) {
    if (chosen.includes(thumb)) play(thumb);
    else stop(thumb);
  }
}, { threshold: [0, 0.75, 1] });

function watchThumbs() {
  if (!cards || !touch.matches) return;
  for (const thumb of cards.querySelectorAll(".thumb[data-preview]")) inView.observe(thumb);
}
watchThumbs();
// Cards come and go (older ones scrolled in, a finished job's card redrawn): watch the new.
if (cards) new MutationObserver(watchThumbs).observe(cards, { childList: true });

// --- selection -----------------------------------------------------------------------------

const bulk = document.getElementById("bulk");
const picked = () => [...document.querySelectorAll(".pick:checked")].map((box) => box.value);
const count = document.getElementById("picked");
const deleteButton = document.getElementById("delete-picked");
const downloadButton = document.getElementById("download-picked");
const acting = [deleteButton, downloadButton, ...bulk.querySelectorAll("#favourite-picked, #collect-picked")];
bulk.classList.add("selecting"); // the actions show once something is picked

document.addEventListener("change", (event) => {
  if (!event.target.matches(".pick")) return;
  const n = picked().length;
  count.textContent = `${n} selected`;
  for (const button of acting) button.disabled = n === 0;
  bulk.classList.toggle("active", n > 0);
  event.target.closest(".card").classList.toggle("picked", event.target.checked);
});

downloadButton.addEventListener("click", () => {
  location.href = "/library/download?" + picked().map((id) => `id=${encodeURIComponent(id)}`).join("&");
});

// Only deleting asks first (studio.js asks for a form with data-confirm unless confirmed).
bulk.addEventListener("submit", (event) => {
  if (event.submitter === deleteButton) delete bulk.dataset.confirmed;
  else bulk.dataset.confirmed = "1";
});

// "New collection…" asks for its name.
const collectTo = document.getElementById("collect-to");
const collectName = document.getElementById("collect-name");
function showName() {
  collectName.hidden = collectTo.value !== "";
  collectName.required = !collectName.hidden;
}
collectTo.addEventListener("change", () => {
  showName();
  if (!collectName.hidden) collectName.focus();
});
showName();
bulk.addEventListener("click", (event) => {
  // The name is asked for by adding to a new collection, not by deleting or favouriting.
  if (event.target.closest("button")) collectName.required = event.target.id === "collect-picked" && !collectName.hidden;
});

// --- infinite scroll -----------------------------------------------------------------------

// The "Older videos" link is replaced by the next page when it comes into view (it stays a
// plain link without scripts).
async function loadMore(link) {
  const url = new URL(link.href);
  url.searchParams.set("fragment", "1");
  const response = await fetch(url, { credentials: "same-origin" });
  // The session ended (signed out elsewhere, or the key revoked): to the sign-in page, and
  // back to this page afterwards, rather than a sign-in form among the cards.
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
