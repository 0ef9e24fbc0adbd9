// The Listen screen: one track (player, what it is, its downloads, similar clips) and the list of
// every track made before ("Your tracks"). The formats offered for download come from /api/options;
// a finished track's own links and notes come from GET /api/tracks/{id} (`files`, `file_notes`, and
// `stems` when its mode made the parts apart). A loop plays round and round.
import { api } from "./api.js";
import { renderSimilar } from "./library.js";
import { $, h, ago, bpm, clock, duration, percent, GENRE_COLOURS, ICONS } from "./util.js";

const state = {
  player: null,
  showBanner: () => {},
  formats: [],            // /api/options formats: {name, label, extension, mime, description}
  modeLabels: {},
  genreLabels: {},
  trackId: null,          // the track on the player (or being opened)
  tracks: [],             // the history, newest first
};

/** The player and where to say what went wrong; call before anything else here. */
export function initListen({ player, showBanner }) {
  state.player = player;
  state.showBanner = showBanner;
}

/** The server's vocabulary: labels of modes and genres, and the formats a track can be downloaded in. */
export function setListenOptions(options) {
  state.formats = options.formats || [];
  for (const m of options.modes) state.modeLabels[m.name] = m.label;
  for (const g of options.genres) state.genreLabels[g.name] = g.label;
}

/** The Listen screen was shown: open the track the address names, else the current one, else the newest. */
export function showListen(id) {
  const wanted = id || state.trackId || (state.tracks[0] && state.tracks[0].id);
  if (wanted && wanted !== state.trackId) openTrack(wanted);
}

const genreLabel = (name) => state.genreLabels[name] || name;
const modeLabel = (name) => state.modeLabels[name] || name;
const fileName = (meta, fmt) => `melodymaker-${meta.genre}-${meta.mode}-${meta.seed}.${fmt.extension}`;
const fileUrl = (id, fmt) => `/api/tracks/${id}/audio.${fmt.extension}`;

// -- one track: player, info, downloads, similar ---------------------------------------------------
export async function openTrack(id, { autoplay = false } = {}) {
  state.trackId = id;
  let track;
  try {
    track = await api(`/api/tracks/${id}`);
  } catch (err) {
    state.trackId = null;
    state.showBanner(`Could not open that track. ${err.message}`);
    return;
  }
  if (state.trackId !== id) return;
  if (track.status !== "done") {
    state.showBanner(`That track is not ready (${track.status}).`);
    return;
  }
  state.showBanner("");
  const meta = track.meta;
  $("empty-player").hidden = true;
  $("player-card").hidden = false;
  $("info-card").hidden = false;
  $("similar-card").hidden = false;
  $("similar-card").dataset.track = id;
  $("player-card").style.setProperty("--genre", GENRE_COLOURS[meta.genre] || "#6d4aff");
  $("np-title").textContent = `${genreLabel(meta.genre)} · ${modeLabel(meta.mode)}`;
  $("np-sub").textContent = [duration(meta.length), meta.tempo ? bpm(meta.tempo) : null, `seed ${meta.seed}`,
    meta.created ? `made ${ago(meta.created)}` : null].filter(Boolean).join(" · ");
  renderDownloads(id, meta, track.files || {}, track.file_notes || {}, track.stems);
  renderInfo(meta);
  markCurrentInHistory();
  if (location.hash !== `#listen/${id}` && !$("screen-listen").hidden) {
    history.replaceState(null, "", `#listen/${id}`);
  }
  renderSimilar(id);
  state.player.audio.loop = Boolean(meta.loop);  // a loop's WAV ends where it starts
  const playable = playableFormat();
  // without the options (they failed to load), the track's first file: the server lists WAV first
  const url = playable ? (track.files[playable.name] || fileUrl(id, playable)) : Object.values(track.files || {})[0];
  try {
    await state.player.load(url, { autoplay });
  } catch (err) {
    state.showBanner(`Could not load the audio. ${err.message}`);
  }
}

/** The first format of the table this browser can play (the server lists WAV first). */
function playableFormat() {
  const audio = $("audio");
  return state.formats.find((f) => f.mime && audio.canPlayType(f.mime) !== "") || null;
}

/** One download link per format of the server's table (ids dl-<extension>), the stems when the
track has them (dl-stems), and the formats' notes. */
function renderDownloads(id, meta, files, notes, stems) {
  const links = state.formats.map((f) => h("a", {
    id: `dl-${f.extension}`, class: "btn dl", href: `${files[f.name] || fileUrl(id, f)}?download=1`,
    download: fileName(meta, f), "aria-label": `Download ${f.label}`, title: f.description,
    html: ICONS.download }, f.label));
  if (stems) {
    links.push(h("a", { id: "dl-stems", class: "btn dl", href: stems,
      download: `melodymaker-${meta.genre}-${meta.mode}-${meta.seed}-stems.zip`,
      "aria-label": `Download the stems (${(meta.stems || []).join(", ")}) as a ZIP`,
      title: "One WAV per part, summing to the mix, and the score", html: ICONS.download }, "Stems"));
  }
  $("download-links").replaceChildren(...links);
  const lines = state.formats.filter((f) => notes[f.name]).map((f) => h("p", { class: "cap-note dark" },
    `${f.label} is ${notes[f.name].replace(/\.$/, "")}.`));
  $("file-notes").replaceChildren(...lines);
  $("file-notes").hidden = !lines.length;
}

function renderInfo(meta) {
  const fit = meta.genre_fit;
  const fitBox = $("genre-fit");
  if (fit && typeof fit.probability === "number") {
    fitBox.replaceChildren(
      h("p", { class: "fit-head" }, h("strong", {}, percent(fit.probability)),
        ` genre fit: how sure the classifier is that this sounds like ${genreLabel(fit.genre)}`),
      h("ol", { class: "fit-bars", "aria-label": "The classifier's top three genres" }, (fit.top3 || []).map((t) =>
        h("li", { style: `--genre: ${GENRE_COLOURS[t.genre] || "#6d4aff"}` },
          h("span", { class: "fit-name" }, genreLabel(t.genre)),
          h("span", { class: "bar", "aria-hidden": "true" }, h("span", { style: `width: ${percent(t.probability)}` })),
          h("span", { class: "fit-value" }, percent(t.probability))))));
  } else {
    fitBox.replaceChildren(h("p", { class: "muted" }, "Genre fit unavailable: the genre classifier is not trained here."));
  }
  const requested = meta.request && meta.request.tempo;
  const rows = [
    ["Genre", genreLabel(meta.genre)],
    ["Mode", modeLabel(meta.mode)],
    ["Requested tempo", requested ? bpm(requested) : `none (kept ${bpm(meta.tempo)})`],
    ["Detected tempo", bpm(meta.measured_tempo)],
    ...(meta.key ? [["Requested key", meta.key.requested === "auto" ? "auto (the genre's choice)" : meta.key.requested],
                    ["Detected key", (meta.key.estimated || "—") + shifted(meta.key.shift)]] : []),
    ...(meta.meter ? [["Meter", meta.meter.requested +
      (meta.meter.applied === "ignored" ? ` (ignored: ${modeLabel(meta.mode)} plays its own)` : "")]] : []),
    ["Length", `${clock(meta.length)} (${meta.length.toFixed(2)} s)`],
    ...(meta.loop ? [["Loop", `${meta.loop.bars} bar${meta.loop.bars === 1 ? "" : "s"}, samples ` +
      `${meta.loop.start}–${meta.loop.end}${meta.loop.crossfade ? ", tail crossfaded into the start" : ""}`]] : []),
    ["Seed", String(meta.seed)],
    ["Generation time", meta.timings ? `${meta.timings.total.toFixed(2)} s` : "—"],
    ["Instruments", meta.instruments && meta.instruments.length ? meta.instruments.join(", ") : "the genre's usual"],
  ];
  if (meta.candidates && meta.candidates.tried > 1) {
    rows.push(["Candidates", `best of ${meta.candidates.tried}`]);
  }
  $("track-info").replaceChildren(...rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

/** ", pitch-shifted +3 semitones" when a mode that cannot write in a key moved its audio onto it. */
function shifted(shift) {
  if (!shift || !shift.semitones) return "";
  const n = shift.semitones;
  return `, pitch-shifted ${n > 0 ? "+" : "−"}${Math.abs(n)} semitone${Math.abs(n) === 1 ? "" : "s"}`;
}

// -- history -------------------------------------------------------------------------------------
export async function loadHistory() {
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
  const title = `${genreLabel(meta.genre)} · ${modeLabel(meta.mode)}`;
  const fit = meta.genre_fit && typeof meta.genre_fit.probability === "number"
    ? `${percent(meta.genre_fit.probability)} fit` : null;
  const play = h("button", { type: "button", class: "icon-btn", html: ICONS.play,
    "aria-label": `Play ${title}, seed ${meta.seed}` });
  play.addEventListener("click", () => {
    if (state.trackId === meta.id) { state.player.toggle(); return; }
    history.replaceState(null, "", `#listen/${meta.id}`);
    openTrack(meta.id, { autoplay: true });
  });
  const downloads = h("span", { class: "history-dl" }, state.formats.map((f) =>
    h("a", { href: `${fileUrl(meta.id, f)}?download=1`, download: fileName(meta, f),
      "aria-label": `Download ${title}, seed ${meta.seed}, as ${f.label}` }, f.label)));
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
