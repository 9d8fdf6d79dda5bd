// A project's page: "Resume" opens the conversation in the assistant panel, without a reload
// (the link itself, followed, does the same).
import { resume } from "./assistant.js";

for (const link of document.querySelectorAll("[data-resume]")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    history.replaceState(null, "", link.href);
    resume(link.dataset.resume);
  });
}
