// Create and Storyboard: at most two characters ticked; up to three reference images, chosen
// or dropped, previewed.
const picker = document.getElementById("characters");
if (picker) {
  const boxes = [...picker.querySelectorAll("input[type=checkbox]")];
  const most = Number(picker.dataset.max);
  const limit = () => {
    const full = boxes.filter((b) => b.checked).length >= most;
    for (const box of boxes) box.disabled = full && !box.checked;
  };
  for (const box of boxes) box.addEventListener("change", limit);
  limit();
}

const drop = document.getElementById("references-drop");
if (drop) {
  const input = document.getElementById("reference_images");
  const previews = document.getElementById("reference-previews");
  const most = Number(drop.dataset.max);

  const show = () => {
    previews.replaceChildren(
      ...[...input.files].map((file, index) => {
        const img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = `Reference image ${index + 1}: ${file.name}`;
        return img;
      }),
    );
  };
  input.addEventListener("change", show);

  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const list = new DataTransfer();
    // Those chosen before, then the dropped ones: the first three.
    for (const file of [...input.files, ...event.dataTransfer.files].slice(0, most)) list.items.add(file);
    input.files = list.files;
    show();
  });
}
