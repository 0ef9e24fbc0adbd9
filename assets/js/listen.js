// The Listen screen: one track (player, what it is, its downloads, similar clips) and the list of
// every track made before ("Your tracks"). The formats offered for download come from /api/options;
// a finished track's own links and notes come from GET /api/tracks/{id} (`files`, `file_notes`, and
// `stems` when its mode made the parts apart). A loop plays round and round.
// A finished track can be extended (a new track that continues it: "Keep going"); a track made as one
// of several candidates shows its group ("Variations"): audition any, keep the ones worth keeping.
// "Your tracks" lists each group's chosen track and the kept variations, not the others.
// Every track says its sound format (22.05 kHz mono, or 44.1 kHz stereo for studio quality).
import { api, followJob, jobError } from "./api.js";
import { renderSimilar } from "./library.js";
import { soundFormat } from "./player.js";
import { $, h, ago, bpm, capitalise, clock, duration, percent, GENRE_COLOURS, ICONS } from "./util.js";

const state = {
  player: null,
  showBanner: () => {},
  formats: [],            // /api/options formats: {name, label, extension, mime, description}
  modeLabels: {},
  genreLabels: {},
  trackId: null,          // the track on the player (or being opened)
  meta: null,             // its metadata, once open
  tracks: [],             // the history, newest first: what "Your tracks" lists
  allTracks: [],          // every stored track the server listed, variations included
  kept: new Set(),        // variations kept in this page (before the list catches up)
  lengthMax: 300,         // the longest track (/api/options length.max)
  extension: null,        // the extension job being followed: {id, parent}
};

const HISTORY_FETCH = 200;  // variations share the list with the tracks shown: ask for more

/** The player and where to say what went wrong; call before anything else here. */
export function initListen({ player, showBanner }) {
  state.player = player;
  state.showBanner = showBanner;
  $("extend-form").addEventListener("submit", extend);
  $("extend-cancel").addEventListener("click", cancelExtension);
  $("extend-seconds").addEventListener("input", clearExtendError);
}

/** The server's vocabulary: labels of modes and genres, and the formats a track can be downloaded in. */
export function setListenOptions(options) {
  state.formats = options.formats || [];
  if (options.length && options.length.max) state.lengthMax = options.length.max;
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
  state.meta = meta;
  $("empty-player").hidden = true;
  $("player-card").hidden = false;
  $("info-card").hidden = false;
  $("similar-card").hidden = false;
  $("similar-card").dataset.track = id;
  $("player-card").style.setProperty("--genre", GENRE_COLOURS[meta.genre] || "#6d4aff");
  $("np-title").textContent = `${genreLabel(meta.genre)} · ${modeLabel(meta.mode)}`;
  $("np-sub").textContent = [duration(meta.length), meta.tempo ? bpm(meta.tempo) : null, `seed ${meta.seed}`,
    soundFormat(meta), meta.created ? `made ${ago(meta.created)}` : null].filter(Boolean).join(" · ");
  renderDownloads(id, meta, track.files || {}, track.file_notes || {}, track.stems);
  renderInfo(meta);
  renderExtend(meta);
  renderVariations(id, meta);
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
  $("download-format").textContent = soundFormat(meta);  // what the WAV and MP3 hold
  $("download-format").title = (meta.quality && meta.quality.note) || "";
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
    ["Sound", soundFormat(meta, { detail: true })],
    ...(meta.loop ? [["Loop", `${meta.loop.bars} bar${meta.loop.bars === 1 ? "" : "s"}, samples ` +
      `${meta.loop.start}–${meta.loop.end}${meta.loop.crossfade ? ", tail crossfaded into the start" : ""}`]] : []),
    ["Seed", String(meta.seed)],
    ["Generation time", meta.timings ? `${meta.timings.total.toFixed(2)} s` : "—"],
    ["Instruments", meta.instruments && meta.instruments.length ? meta.instruments.join(", ") : "the genre's usual"],
    ...(meta.details && meta.details.soundfont ? [["SoundFont", meta.details.soundfont]] : []),
  ];
  if (meta.candidates && meta.candidates.tried > 1) {
    rows.push(["Candidates", `best of ${meta.candidates.tried}`]);
  }
  if (meta.parent) {
    rows.push(["Extended from", h("a", { href: `#listen/${meta.parent}`, id: "extended-from" }, parentName(meta))]);
    if (meta.seam) {
      rows.push(["Seam", `at ${clock(meta.seam.at)} (${meta.seam.at.toFixed(2)} s), ` +
        `${meta.seam.crossfade.toFixed(2)} s crossfade`]);
    }
  }
  if (meta.reference) {  // made from an uploaded clip: its timbre transferred, or "more like" it
    const ref = meta.reference;
    rows.push([meta.transfer ? "Timbre transfer of" : "Made like", `${ref.filename || "an uploaded clip"}` +
      (typeof ref.length === "number" ? ` (${clock(ref.length)})` : "")]);
  }
  if (meta.group && meta.group.chosen !== meta.id) {
    rows.push(["Variation", `${isKept(meta) ? "kept" : "not chosen"}: one of ${meta.group.tracks.length}`]);
  }
  $("track-info").replaceChildren(...rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

/** The track an extension continues, in words: its title and length when it is in the list. */
function parentName(meta) {
  const parent = state.allTracks.find((t) => t.id === meta.parent);
  if (parent) return `${genreLabel(parent.genre)} · ${modeLabel(parent.mode)}, ${clock(parent.length)}, seed ${parent.seed}`;
  return meta.seam ? `the ${clock(meta.seam.parent_length)} track it continues` : "the track it continues";
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
    const { tracks } = await api(`/api/tracks?limit=${HISTORY_FETCH}`);
    state.allTracks = tracks;
    state.tracks = tracks.filter(listed);
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

/** Whether "Your tracks" lists a track: one of no group, its group's chosen one, or a kept variation. */
function listed(meta) {
  return !meta.group || meta.group.chosen === meta.id || isKept(meta);
}

const isKept = (meta) => Boolean(meta.kept) || state.kept.has(meta.id);

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
        meta.quality && meta.quality.channels === 2 ? soundFormat(meta) : null,
        meta.parent ? "extended" : null, meta.group && meta.group.chosen !== meta.id ? "kept variation" : null,
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

// -- keep going: extend the open track ------------------------------------------------------------
/** The extend control for the open track: its room under the length limit, or why it cannot grow. */
function renderExtend(meta) {
  $("extend-card").hidden = false;
  if (state.extension) return;  // an extension is running: its progress stays as it is
  const room = Math.floor(state.lengthMax - meta.length);
  const input = $("extend-seconds");
  const blocked = meta.loop ? "A seamless loop is repeated, not extended."
    : meta.transfer ? "A timbre transfer follows its clip, and there is no more of the clip to transfer."
    : room < 1 ? `This track is already ${duration(meta.length)}, the longest a track can be.` : null;
  $("extend").disabled = Boolean(blocked);
  input.disabled = Boolean(blocked);
  input.max = String(Math.max(room, 1));
  const value = Number(input.value);
  if (!blocked && (!Number.isFinite(value) || value < 1 || value > room)) input.value = String(Math.min(15, room));
  $("extend-hint").textContent = blocked ||
    `Continues this track as a new one (this one stays as it is): up to ${room} more seconds, ` +
    `${duration(state.lengthMax)} in all.`;
  clearExtendError();
  $("extend-done").textContent = "";
}

async function extend(event) {
  event.preventDefault();
  if (state.extension || !state.trackId) return;
  clearExtendError();
  $("extend-done").textContent = "";
  const parent = state.trackId;
  const raw = $("extend-seconds").value.trim();
  // text that is not a number goes as typed, for the server to explain
  const seconds = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  setExtending(true);
  showExtendProgress({ status: "queued", progress: 0 });
  let started;
  try {
    started = await api(`/api/tracks/${parent}/extend`, { method: "POST", body: { seconds } });
  } catch (err) {
    setExtending(false);
    showExtendError(err);
    return;
  }
  state.extension = { id: started.id, parent };
  let final;
  try {
    final = await followJob(started.id, showExtendProgress);
  } catch (err) {
    final = { status: "error", error: { message: err.message } };
  }
  state.extension = null;
  setExtending(false);
  if (final.status === "done") {
    await loadHistory();
    const opening = openTrack(final.id, { autoplay: true });  // first: the route then finds it open
    location.hash = `#listen/${final.id}`;
    await opening;
    if (state.trackId === final.id) $("extend-done").textContent = `Extended to ${duration(final.meta.length)}: the new track is playing.`;
  } else if (final.status === "error") {
    showExtendError(jobError(final, "the extension failed"));
  } else {
    $("extend-done").textContent = "Extension cancelled. Nothing was made.";
  }
}

async function cancelExtension() {
  if (!state.extension) return;
  $("extend-cancel").disabled = true;
  $("extend-status").textContent = "Cancelling…";
  try {
    await api(`/api/tracks/${state.extension.id}/cancel`, { method: "POST" });
  } catch (err) {
    showExtendError(err);
  }
}

function setExtending(busy) {
  $("extend").disabled = busy;
  $("extend").textContent = busy ? "Extending…" : "Extend";
  $("extend-job").hidden = !busy;
  $("extend-cancel").disabled = !busy;
}

function showExtendProgress(job) {
  const p = Math.round((job.progress || 0) * 100);
  $("extend-status").textContent = job.status === "queued" ? "Waiting for a free worker…"
    : job.status === "running" ? `${capitalise(job.message || "extending")}…` : capitalise(job.status);
  $("extend-percent").textContent = `${p}%`;
  $("extend-bar").setAttribute("aria-valuenow", String(p));
  $("extend-bar").firstElementChild.style.width = `${p}%`;
}

function showExtendError(err) {
  $("extend-error").textContent = err.message || String(err);
  $("extend-error").hidden = false;
  if (!err.field || err.field === "seconds") $("extend-seconds").setAttribute("aria-invalid", "true");
}

function clearExtendError() {
  $("extend-error").hidden = true;
  $("extend-error").textContent = "";
  $("extend-seconds").removeAttribute("aria-invalid");
}

// -- variations: the open track's group -------------------------------------------------------------
/** The group's members, best first: audition any on the player, keep a variation that was not chosen. */
async function renderVariations(id, meta) {
  const card = $("variations-card");
  const group = meta.group;
  if (!group || !group.tracks || group.tracks.length < 2) {
    card.hidden = true;
    $("variations").replaceChildren();
    return;
  }
  if (card.dataset.group !== group.id) $("variations-status").textContent = "";
  card.dataset.group = group.id;
  card.hidden = false;
  $("variations-hint").textContent = `${group.tracks.length} versions were made from this request; the one that ` +
    "sounded most like the genre was chosen. Your tracks lists it and the ones you keep.";
  const metas = await memberMetas(group, meta);
  if (state.trackId !== id) return;  // another track was opened meanwhile
  $("variations").replaceChildren(...group.tracks.map((member, i) => variationItem(member, i, group, metas[member.id])));
}

/** Each member's stored metadata (for its kept flag): from the list when it is there, else asked for. */
async function memberMetas(group, open) {
  const known = Object.fromEntries(state.allTracks.map((t) => [t.id, t]));
  known[open.id] = open;
  const missing = group.tracks.filter((m) => !known[m.id]);
  const answers = await Promise.all(missing.map((m) => api(`/api/tracks/${m.id}`).catch(() => null)));
  for (const answer of answers) if (answer && answer.meta) known[answer.id] = answer.meta;
  return known;
}

function variationItem(member, index, group, meta) {
  const chosen = member.id === group.chosen;
  const kept = !chosen && (state.kept.has(member.id) || Boolean(meta && meta.kept));
  const current = member.id === state.trackId;
  const name = `variation ${index + 1}, seed ${member.seed}`;
  const fit = typeof member.genre_fit === "number" ? `${percent(member.genre_fit)} genre fit` : "genre fit unknown";
  const play = h("button", { type: "button", class: "icon-btn", html: ICONS.play,
    "aria-label": current ? `Play or pause ${name}` : `Audition ${name}` });
  play.addEventListener("click", () => {
    if (state.trackId === member.id) { state.player.toggle(); return; }
    history.replaceState(null, "", `#listen/${member.id}`);
    openTrack(member.id, { autoplay: true });
  });
  const badges = [chosen ? h("span", { class: "badge chosen" }, "Chosen") : null,
    kept ? h("span", { class: "badge kept" }, "Kept") : null,
    current ? h("span", { class: "badge current" }, "On the player") : null];
  let keep = null;
  if (!chosen && !kept) {
    keep = h("button", { type: "button", class: "btn secondary small", "aria-label": `Keep ${name}` }, "Keep");
    keep.addEventListener("click", () => keepVariation(member, index, keep));
  }
  return h("li", { class: `variation${current ? " current" : ""}`, dataset: { id: member.id },
    "aria-current": current ? "true" : null },
    play,
    h("span", { class: "variation-text" },
      h("span", { class: "variation-title" }, `Variation ${index + 1}`, ...badges),
      h("span", { class: "variation-meta" }, `seed ${member.seed} · ${fit}`)),
    keep);
}

async function keepVariation(member, index, button) {
  button.disabled = true;
  $("variations-status").textContent = "";
  try {
    await api(`/api/tracks/${member.id}/keep`, { method: "POST" });
  } catch (err) {
    button.disabled = false;
    $("variations-status").textContent = `Could not keep variation ${index + 1}. ${err.message}`;
    return;
  }
  state.kept.add(member.id);
  await loadHistory();
  if (state.meta) {
    renderInfo(state.meta);
    await renderVariations(state.trackId, state.meta);
  }
  $("variations-status").textContent = `Kept variation ${index + 1}: it is in Your tracks now.`;
  const item = $("variations").querySelector(`li[data-id="${member.id}"] button`);
  if (item) item.focus();
}
