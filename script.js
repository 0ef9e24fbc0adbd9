// MelodyMaker's page: three screens (Discover, Create, Listen) over the HTTP API.
// Modules under assets/js/: api (fetch + errors), create (the form and the job),
// player (audio, waveform, visualizer), library (demos, similar clips), util.
import { api } from "/assets/js/api.js";
import { initCreate, selectGenre, showClassifier } from "/assets/js/create.js";
import { initPreview, pausePreview, renderDiscover, renderSimilar, togglePreviewIfLoaded } from "/assets/js/library.js";
import { Player } from "/assets/js/player.js";
import { $, h, ago, bpm, clock, duration, percent, capitalise, GENRE_COLOURS, ICONS } from "/assets/js/util.js";

const SCREENS = ["discover", "create", "listen"];
const state = { options: null, modeLabels: {}, genreLabels: {}, trackId: null, tracks: [] };

const player = new Player({
  audio: $("audio"), playButton: $("play"), waveform: $("waveform"), visualizer: $("visualizer"),
  volume: $("volume"), current: $("time-current"), total: $("time-total"),
});
player.addEventListener("playing", () => pausePreview());
player.addEventListener("error", (e) => showBanner(`Could not play the track: ${e.detail.message}`));
$("volume-icon").innerHTML = ICONS.volume;

// -- screens -------------------------------------------------------------------------------------
function route() {
  const [screen, id] = location.hash.replace(/^#/, "").split("/");
  const name = SCREENS.includes(screen) ? screen : "discover";
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.screen === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (name === "listen") {
    const wanted = id || state.trackId || (state.tracks[0] && state.tracks[0].id);
    if (wanted && wanted !== state.trackId) openTrack(wanted);
  }
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

// -- one track: player, info, downloads, similar ---------------------------------------------------
async function openTrack(id, { autoplay = false } = {}) {
  state.trackId = id;
  let track;
  try {
    track = await api(`/api/tracks/${id}`);
  } catch (err) {
    state.trackId = null;
    showBanner(`Could not open that track. ${err.message}`);
    return;
  }
  if (state.trackId !== id) return;
  if (track.status !== "done") {
    showBanner(`That track is not ready (${track.status}).`);
    return;
  }
  showBanner("");
  const meta = track.meta;
  $("empty-player").hidden = true;
  $("player-card").hidden = false;
  $("info-card").hidden = false;
  $("similar-card").hidden = false;
  $("similar-card").dataset.track = id;
  $("player-card").style.setProperty("--genre", GENRE_COLOURS[meta.genre] || "#6d4aff");
  $("np-title").textContent = `${state.genreLabels[meta.genre] || meta.genre} · ${state.modeLabels[meta.mode] || meta.mode}`;
  $("np-sub").textContent = [duration(meta.length), meta.tempo ? bpm(meta.tempo) : null, `seed ${meta.seed}`,
    meta.created ? `made ${ago(meta.created)}` : null].filter(Boolean).join(" · ");
  for (const ext of ["wav", "mp3", "mid"]) {
    const link = $(`dl-${ext}`);
    link.href = `/api/tracks/${id}/audio.${ext}?download=1`;
    link.setAttribute("download", `melodymaker-${meta.genre}-${meta.mode}-${meta.seed}.${ext}`);
    link.setAttribute("aria-label", `Download ${ext === "mid" ? "MIDI" : ext.toUpperCase()}`);
    if (!link.querySelector("svg")) link.insertAdjacentHTML("afterbegin", ICONS.download);
  }
  const transcribed = meta.capabilities && !meta.capabilities.midi;
  $("midi-note").hidden = !transcribed;
  $("midi-note").textContent = transcribed
    ? `MIDI is a transcription: ${state.modeLabels[meta.mode] || meta.mode} makes audio, so the notes are detected from it.`
    : "";
  renderInfo(meta);
  markCurrentInHistory();
  if (location.hash !== `#listen/${id}` && !$("screen-listen").hidden) {
    history.replaceState(null, "", `#listen/${id}`);
  }
  renderSimilar(id);
  try {
    await player.load(track.files.wav, { autoplay });
  } catch (err) {
    showBanner(`Could not load the audio. ${err.message}`);
  }
}

function renderInfo(meta) {
  const fit = meta.genre_fit;
  const fitBox = $("genre-fit");
  if (fit && typeof fit.probability === "number") {
    fitBox.replaceChildren(
      h("p", { class: "fit-head" }, h("strong", {}, percent(fit.probability)),
        ` genre fit: how sure the classifier is that this sounds like ${state.genreLabels[fit.genre] || fit.genre}`),
      h("ol", { class: "fit-bars", "aria-label": "The classifier's top three genres" }, (fit.top3 || []).map((t) =>
        h("li", { style: `--genre: ${GENRE_COLOURS[t.genre] || "#6d4aff"}` },
          h("span", { class: "fit-name" }, state.genreLabels[t.genre] || t.genre),
          h("span", { class: "bar", "aria-hidden": "true" }, h("span", { style: `width: ${percent(t.probability)}` })),
          h("span", { class: "fit-value" }, percent(t.probability))))));
  } else {
    fitBox.replaceChildren(h("p", { class: "muted" }, "Genre fit unavailable: the genre classifier is not trained here."));
  }
  const requested = meta.request && meta.request.tempo;
  const rows = [
    ["Genre", state.genreLabels[meta.genre] || meta.genre],
    ["Mode", state.modeLabels[meta.mode] || meta.mode],
    ["Requested tempo", requested ? bpm(requested) : `none (kept ${bpm(meta.tempo)})`],
    ["Detected tempo", bpm(meta.measured_tempo)],
    ["Length", `${clock(meta.length)} (${meta.length.toFixed(2)} s)`],
    ["Seed", String(meta.seed)],
    ["Generation time", meta.timings ? `${meta.timings.total.toFixed(2)} s` : "—"],
    ["Instruments", meta.instruments && meta.instruments.length ? meta.instruments.join(", ") : "the genre's usual"],
  ];
  if (meta.candidates && meta.candidates.tried > 1) {
    rows.push(["Candidates", `best of ${meta.candidates.tried}`]);
  }
  $("track-info").replaceChildren(...rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

// -- history -------------------------------------------------------------------------------------
async function loadHistory() {
  try {
    const { tracks } = await api("/api/tracks?limit=50");
    state.tracks = tracks;
  } catch (err) {
    $("history-status").textContent = `Could not load your tracks. ${err.message}`;
    return;
  }
  $("history-status").textContent = state.tracks.length ? "" : "Nothing yet: your tracks appear here, newest first.";
  $("history-count").hidden = !state.tracks.length;
  $("history-count").textContent = String(state.tracks.length);
  $("history").replaceChildren(...state.tracks.map(historyItem));
  markCurrentInHistory();
}

function historyItem(meta) {
  const genre = state.genreLabels[meta.genre] || meta.genre;
  const mode = state.modeLabels[meta.mode] || meta.mode;
  const title = `${genre} · ${mode}`;
  const fit = meta.genre_fit && typeof meta.genre_fit.probability === "number"
    ? `${percent(meta.genre_fit.probability)} fit` : null;
  const play = h("button", { type: "button", class: "icon-btn", html: ICONS.play,
    "aria-label": `Play ${title}, seed ${meta.seed}` });
  play.addEventListener("click", () => {
    if (state.trackId === meta.id) { player.toggle(); return; }
    history.replaceState(null, "", `#listen/${meta.id}`);
    openTrack(meta.id, { autoplay: true });
  });
  const downloads = h("span", { class: "history-dl" }, [["wav", "WAV"], ["mp3", "MP3"], ["mid", "MIDI"]].map(([ext, label]) =>
    h("a", { href: `/api/tracks/${meta.id}/audio.${ext}?download=1`, download: `melodymaker-${meta.genre}-${meta.mode}-${meta.seed}.${ext}`,
      "aria-label": `Download ${title}, seed ${meta.seed}, as ${label}` }, label)));
  return h("li", { class: "history-item", dataset: { id: meta.id }, style: `--genre: ${GENRE_COLOURS[meta.genre] || "#6d4aff"}` },
    play,
    h("span", { class: "history-text" },
      h("span", { class: "history-title" }, title),
      h("span", { class: "history-meta" }, [clock(meta.length), meta.tempo ? bpm(meta.tempo) : null, `seed ${meta.seed}`, fit,
        meta.created ? ago(meta.created) : null].filter(Boolean).join(" · ")),
      downloads));
}

function markCurrentInHistory() {
  for (const li of $("history").children) {
    const current = li.dataset.id === state.trackId;
    li.classList.toggle("current", current);
    if (current) li.setAttribute("aria-current", "true");
    else li.removeAttribute("aria-current");
  }
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
  state.options = options;
  for (const m of options.modes) state.modeLabels[m.name] = m.label;
  for (const g of options.genres) state.genreLabels[g.name] = g.label;
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
