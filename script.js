// MelodyMaker's page: three screens (Discover, Create, Listen) over the HTTP API.
// This file wires the modules under assets/js/ together: api (fetch + errors), create (the form and
// the job), listen (the player screen and your tracks), player (audio, waveform, visualizer),
// library (demos, similar clips), util. It owns routing, the Space shortcut and the banner.
import { api } from "/assets/js/api.js";
import { initCreate, selectGenre, showClassifier } from "/assets/js/create.js";
import { initListen, loadHistory, openTrack, setListenOptions, showListen } from "/assets/js/listen.js";
import { initPreview, pausePreview, renderDiscover, togglePreviewIfLoaded } from "/assets/js/library.js";
import { Player } from "/assets/js/player.js";
import { $, listOf, ICONS } from "/assets/js/util.js";

const SCREENS = ["discover", "create", "listen"];

const player = new Player({
  audio: $("audio"), playButton: $("play"), waveform: $("waveform"), visualizer: $("visualizer"),
  volume: $("volume"), current: $("time-current"), total: $("time-total"),
});
player.addEventListener("playing", () => pausePreview());
player.addEventListener("error", (e) => showBanner(`Could not play the track: ${e.detail.message}`));
$("volume-icon").innerHTML = ICONS.volume;
initListen({ player, showBanner });

// -- screens -------------------------------------------------------------------------------------
function route() {
  const [screen, id] = location.hash.replace(/^#/, "").split("/");
  const name = SCREENS.includes(screen) ? screen : "discover";
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.screen === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (name === "listen") showListen(id);
  return name;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

window.addEventListener("hashchange", () => {
  const name = route();
  const heading = $(`${name}-title`);
  if (heading) heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
});

// Space plays or pauses, unless focus is somewhere that uses the key itself.
document.addEventListener("keydown", (e) => {
  if (e.code !== "Space" && e.key !== " ") return;
  if (e.target.closest("input, textarea, select, button, a, [contenteditable]")) return;
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  const onListen = !$("screen-listen").hidden;
  if (onListen && player.loaded) {
    e.preventDefault();
    player.toggle();
  } else if (togglePreviewIfLoaded()) {
    e.preventDefault();
  }
});

function showBanner(message) {
  $("app-error").textContent = message;
  $("app-error").hidden = !message;
}

// -- start ---------------------------------------------------------------------------------------
async function start() {
  initPreview({ onStart: () => player.pause() });
  let options;
  try {
    options = await api("/api/options");
  } catch (err) {
    showBanner(`Could not load the options from the server. ${err.message}`);
    route();
    return;
  }
  setListenOptions(options);
  $("format-names").textContent = listOf(options.formats.map((f) => f.label));
  // health can be slow on a fresh server (it loads the classifier): never wait for it
  api("/api/health").then((health) => showClassifier(health.classifier)).catch(() => {});
  const library = await renderDiscover(options, { onPick: (genre) => selectGenre(genre) }).catch((err) => {
    $("library-summary").textContent = `Could not load the library. ${err.message}`;
    return null;
  });
  initCreate({
    options,
    counts: library ? library.per_genre : {},
    onTrackDone: async (track) => {
      await loadHistory();
      go(`#listen/${track.id}`);
      openTrack(track.id, { autoplay: true });
    },
  });
  await loadHistory();
  document.body.classList.add("ready");
  route();
}

start();
