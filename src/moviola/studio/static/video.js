// The video page: keyboard shortcuts for the player (space plays, arrows seek).
const player = document.getElementById("player");
if (player) {
  player.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") player.currentTime = Math.min(player.duration, player.currentTime + 1 / 8);
    else if (event.key === "ArrowLeft") player.currentTime = Math.max(0, player.currentTime - 1 / 8);
    else return;
    event.preventDefault();
  });
}
