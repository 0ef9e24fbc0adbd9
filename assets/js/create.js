// The Create screen: the request form built from /api/options (its genres, instruments, keys,
// meters, presets, modes, sound qualities and the limits of every number: tempo, length, seed, candidates), mode capability notes,
// and a generation job followed to the end (progress, cancel, errors in plain words next to the field).
// "More like this" posts a clip with the chosen mode, shows what was heard in it, and follows its job
// the same way.
import { api, followJob, jobError } from "./api.js";
import { $, h, duration, capitalise, GENRE_COLOURS, ICONS } from "./util.js";

const FIELDS = ["genre", "instruments", "tempo", "key", "meter", "length", "loop", "mode", "quality", "seed", "candidates"];
const ROLE_NAMES = { drums: "Drums", bass: "Bass", harmony: "Harmony", lead: "Lead" };
const SETTINGS_KEY = "melodymaker.settings";
const TRANSFER_MODE = "rave";  // the mode that can play an uploaded clip itself (timbre transfer)

let options = null;
let counts = {};          // library clips per genre
let onDone = () => {};
let job = null;           // the job being followed: {id}
let classifierMissing = false;  // from /api/health: best-of-N cannot choose here

export function initCreate({ options: opts, counts: libraryCounts, onTrackDone }) {
  options = opts;
  counts = libraryCounts || {};
  onDone = onTrackDone;
  applyLimits();
  renderGenres();
  renderInstruments();
  renderKeys();
  renderMeters();
  renderPresets();
  renderModes();
  renderQualities();
  restoreSettings();
  const form = $("generate-form");
  form.addEventListener("input", (e) => onInput(e.target));
  form.addEventListener("change", (e) => onInput(e.target));
  form.addEventListener("submit", submit);
  $("surprise").addEventListener("click", surprise);
  $("surprise").insertAdjacentHTML("afterbegin", ICONS.dice);
  $("cancel").addEventListener("click", cancel);
  $("reference-go").addEventListener("click", fromReference);
  $("reference-file").addEventListener("change", () => clearReferenceError());
  onInput(null);
}

/** Say up front when best-of-N cannot work here (health may arrive before or after the options). */
export function showClassifier(classifier) {
  classifierMissing = Boolean(classifier && !classifier.available);
  renderCandidatesHint();
}

function renderCandidatesHint() {
  if (classifierMissing) {
    $("candidates-hint").textContent = "Needs the genre classifier to choose among versions, " +
      "which is not available here, so only 1 works for now.";
  } else if (options) {
    const { min, max } = options.candidates;
    $("candidates-hint").textContent = `Make ${min}–${max} versions and keep the one that sounds most like the genre.`;
  }
}

/** Preselect a genre (from a Discover card). */
export function selectGenre(name) {
  const radio = document.querySelector(`input[name="genre"][value="${name}"]`);
  if (radio) { radio.checked = true; onInput(radio); }
}

// -- building the form ----------------------------------------------------------------------
/** The server's limits on the number inputs and sliders, and its defaults. */
function applyLimits() {
  for (const name of ["tempo", "length"]) {
    const { min, max, default: value } = options[name];
    // no default from the server (tempo): keep the page's, within the server's range
    const start = value ?? Math.min(Math.max(Number($(name).value) || min, min), max);
    for (const input of [$(name), $(`${name}-range`)]) {
      Object.assign(input, { min: String(min), max: String(max), value: String(start) });
    }
  }
  const { min, max } = options.candidates;
  Object.assign($("candidates"), { min: String(min), max: String(max), value: String(min) });
  renderCandidatesHint();
}

function renderGenres() {
  $("genres").replaceChildren(...options.genres.map((g) => h("label",
    { class: "genre-tile", style: `--genre: ${GENRE_COLOURS[g.name] || "#6d4aff"}` },
    h("input", { type: "radio", name: "genre", value: g.name }),
    h("span", { class: "tile-name" }, g.label),
    h("span", { class: "tile-count", dataset: { genre: g.name } }))));
  const first = options.genres.find((g) => counts[g.name] > 0) || options.genres[0];
  selectGenreQuietly(first.name);
}

function selectGenreQuietly(name) {
  const radio = document.querySelector(`input[name="genre"][value="${name}"]`);
  if (radio) radio.checked = true;
}

function renderInstruments() {
  const byRole = {};
  for (const i of options.instruments) (byRole[i.role] ||= []).push(i);
  $("instruments").replaceChildren(...Object.entries(byRole).map(([role, list]) => h("div",
    { class: "instrument-group", role: "group", "aria-label": ROLE_NAMES[role] || role },
    h("p", { class: "group-name", "aria-hidden": "true" }, ROLE_NAMES[role] || role),
    h("div", { class: "chips" }, list.map((i) => h("label", { class: "chip" },
      h("input", { type: "checkbox", name: "instruments", value: i.name }),
      h("span", {}, i.label)))))));
}

/** "Auto", then the server's keys grouped by mode ("C major" … "B minor"). */
function renderKeys() {
  const { default: auto, keys, modes } = options.key;
  $("key").replaceChildren(
    h("option", { value: auto }, "Auto (the genre's choice)"),
    ...modes.map((mode) => h("optgroup", { label: capitalise(mode) },
      keys.filter((k) => k.endsWith(` ${mode}`)).map((k) => h("option", { value: k }, k)))));
  $("key").value = auto;
}

/** The server's meters, 4/4 first; the hint says what the tempo counts in each. */
function renderMeters() {
  const { default: standard, meters } = options.meter;
  $("meter").replaceChildren(...meters.map((m) => h("option",
    { value: m.name, title: `${m.beats_per_bar} beats a bar, each a ${m.tempo_counts}` }, m.name)));
  $("meter").value = standard;
  $("meter-hint").textContent = "The tempo counts " + meters.map((m) => `${m.tempo_counts}s in ${m.name}`)
    .join(", ").replace(/, ([^,]*)$/, " and $1") + ".";
}

function renderPresets() {
  $("tempo-presets").replaceChildren(...options.tempo.presets.map((p) => {
    const name = p.label.replace(/\s*\(.*\)/, "");
    const bpm = Math.round((p.low + p.high) / 2);
    return h("button", { type: "button", class: "preset", dataset: { low: p.low, high: p.high },
      "aria-pressed": "false", title: p.label, onclick: () => setPair("tempo", bpm) },
      h("strong", {}, name), h("small", {}, `${p.low}–${p.high}`));
  }));
  $("length-presets").replaceChildren(...options.length.presets.map((p) => {
    const name = p.label.replace(/\s*\(.*\)/, "");
    return h("button", { type: "button", class: "preset", dataset: { low: p.seconds, high: p.seconds },
      "aria-pressed": "false", title: p.label, onclick: () => setPair("length", p.seconds) },
      h("strong", {}, name), h("small", {}, duration(p.seconds)));
  }));
}

// What a mode does with a request field it cannot honour natively; a capability named after a
// format (midi) is shown with the format's label from the server's table.
const OTHERWISE = { instruments: "ignored", key: "approximated", meter: "ignored", tempo: "stretched",
                    length: "trimmed", loop: "approximated", midi: "transcribed", stems: "none" };

function capabilityLabel(key) {
  const fmt = options.formats.find((f) => f.name === key);
  return fmt ? fmt.label : capitalise(key);
}

/** The mode's capabilities, the known ones in the page's order, then any new one. */
function capabilityKeys(mode) {
  const known = Object.keys(OTHERWISE).filter((k) => k in mode.capabilities);
  return [...known, ...Object.keys(mode.capabilities).filter((k) => !(k in OTHERWISE))];
}

function renderModes() {
  const firstAvailable = options.modes.find((m) => m.available);
  $("modes").replaceChildren(...options.modes.map((m) => h("label",
    { class: `mode${m.available ? "" : " unavailable"}` },
    h("input", { type: "radio", name: "mode", value: m.name, disabled: !m.available,
      checked: m === firstAvailable, "aria-describedby": `mode-${m.name}-desc` }),
    h("span", { class: "mode-body", id: `mode-${m.name}-desc` },
      h("span", { class: "mode-title" }, m.label, h("code", {}, m.name)),
      h("span", { class: "mode-desc" }, m.description),
      m.soundfont ? h("span", { class: "mode-font", id: `mode-${m.name}-font` },
        `SoundFont: ${m.soundfont.name} (${m.soundfont.megabytes} MB${m.soundfont.bundled ? ", the bundled one" : ""})`) : null,
      m.available
        ? h("span", { class: "caps" }, capabilityKeys(m).map((key) => m.capabilities[key]
          ? h("span", { class: "cap yes" }, `${capabilityLabel(key)} ✓`)
          : h("span", { class: "cap no" }, `${capabilityLabel(key)}: ${OTHERWISE[key] || "approximated"}`)))
        : h("span", { class: "mode-reason" }, `Unavailable: ${m.reason}`)))));
}

/** The server's output qualities (standard first, its default): "Standard: 22.05 kHz mono". */
function renderQualities() {
  const quality = options.quality;
  $("field-quality").hidden = !quality;  // a server without them makes standard tracks only
  if (!quality) return;
  $("quality").replaceChildren(...quality.qualities.map((q) => h("option",
    { value: q.name }, `${capitalise(q.name)}: ${q.label}`)));
  $("quality").value = quality.default;
}

/** The chosen quality's entry of /api/options, or null. */
function currentQuality() {
  if (!options.quality) return null;
  return options.quality.qualities.find((q) => q.name === $("quality").value) || null;
}

/** What studio quality is in the chosen mode: "true stereo" or "upsampled, centred". */
function studioMeaning(mode) {
  return mode && options.quality ? options.quality.studio[mode.name] : null;
}

// -- keeping the controls, notes and summary in step ----------------------------------------
function setPair(name, value) {
  $(name).value = value;
  $(`${name}-range`).value = value;
  onInput($(name));
}

function onInput(target) {
  if (target && (target.id === "tempo-range" || target.id === "length-range")) {
    $(target.id.replace("-range", "")).value = target.value;
  } else if (target && (target.id === "tempo" || target.id === "length")) {
    if (target.value !== "" && Number.isFinite(Number(target.value))) $(`${target.id}-range`).value = target.value;
  }
  if (target && target.name) clearFieldError(target.name === "tempo-range" ? "tempo" : target.name);
  for (const name of ["tempo", "length"]) {
    const value = Number($(name).value);
    for (const b of $(`${name}-presets`).children) {
      b.setAttribute("aria-pressed", String(value >= Number(b.dataset.low) && value <= Number(b.dataset.high)));
    }
  }
  const length = Number($("length").value);
  $("length-words").textContent = Number.isFinite(length) && length >= 60 ? duration(length) : "";
  const picked = document.querySelectorAll('input[name="instruments"]:checked').length;
  document.querySelector("#field-instruments .optional").textContent = picked ? `${picked} chosen` : "optional";
  updateModeNotes();
  updateSummary();
}

function currentMode() {
  const name = (document.querySelector('input[name="mode"]:checked') || {}).value;
  return options.modes.find((m) => m.name === name) || null;
}

function updateModeNotes() {
  const mode = currentMode();
  const caps = mode ? mode.capabilities
    : { instruments: true, key: true, meter: true, tempo: true, length: true, loop: true, midi: true };
  const label = mode ? mode.label : "";
  note("instruments-note", !caps.instruments,
    `Ignored by this mode: ${label} cannot choose instruments, so you hear the genre's own sound. ` +
    "Pick the Composer mode to hear exactly these.");
  note("key-note", !caps.key,
    `Approximated: ${label} cannot write in a key; it finds the key of its audio and pitch-shifts it ` +
    `(at most ${options.key.max_shift} semitones) onto the chosen key's scale.`);
  $("field-key").classList.toggle("approximated", !caps.key);
  const meter = $("meter").value;
  const genre = (document.querySelector('input[name="genre"]:checked') || {}).value;
  const written = options.meter.meters.find((m) => m.name === meter);
  const unwritten = caps.meter && genre && written && !written.compose_genres.includes(genre);
  if (!caps.meter) {
    note("meter-note", true, `Ignored: ${label} plays in its own meter; the track's details record ` +
      "the meter asked for. Pick the Composer mode to hear it.");
  } else {
    const has = options.meter.meters.filter((m) => m.compose_genres.includes(genre)).map((m) => m.name);
    note("meter-note", unwritten, `Not written for ${genreName(genre)}: ${options.meter.compose_notes[genre] ||
      "no convincing " + meter}. The Composer writes ${genreName(genre)} in ${has.join(", ")}.`);
  }
  $("field-meter").classList.toggle("approximated", !caps.meter);
  note("loop-note", !caps.loop,
    `Approximated: ${label} cannot write a loop; its bars are counted at its tempo in 4/4 and the ` +
    `end of its audio is crossfaded into the start.`);
  $("field-loop").classList.toggle("approximated", !caps.loop);
  note("tempo-note", !caps.tempo,
    `Approximated: ${label} has no tempo control of its own; the result is time-stretched to this tempo.`);
  note("length-note", !caps.length,
    `Approximated: ${label} makes audio of its own length; it is trimmed or looped to this length.`);
  $("field-instruments").classList.toggle("approximated", !caps.instruments);
  const quality = currentQuality();
  if (quality) {
    $("quality-hint").textContent = quality.channels === 2
      ? `${quality.label}: the Composer renders a true stereo mix (each part where the genre's mix puts it); ` +
        "the other modes make 22.05 kHz mono, upsampled and centred. Larger files."
      : `${quality.label}, the format of the library and the models: the smallest files.`;
    const centred = quality.channels === 2 && studioMeaning(mode) && studioMeaning(mode) !== "true stereo";
    note("quality-note", centred, `Upsampled and centred: ${label} makes 22.05 kHz mono, so both channels ` +
      "carry the same signal at 44.1 kHz. Pick the Composer mode for a true stereo mix.");
    $("field-quality").classList.toggle("approximated", Boolean(centred));
  }
  const transfer = Boolean(mode && mode.name === TRANSFER_MODE);  // only RAVE can play a clip itself
  $("reference-transfer-box").hidden = !transfer;
  $("reference-transfer-hint").hidden = !transfer;
  if (!transfer) $("reference-transfer").checked = false;
  const dataset = mode && mode.name === "dataset";
  for (const span of document.querySelectorAll(".tile-count")) {
    const n = counts[span.dataset.genre] || 0;
    span.textContent = dataset ? (n ? `${n} clip${n === 1 ? "" : "s"}` : "no clips") : "";
    span.closest(".genre-tile").classList.toggle("no-clips", dataset && !n);
  }
}

function genreName(name) {
  return (options.genres.find((g) => g.name === name) || { label: name }).label;
}

function note(id, show, text) {
  $(id).hidden = !show;
  $(id).textContent = show ? text : "";
}

function updateSummary() {
  const request = readRequest();
  const mode = currentMode();
  const genre = options.genres.find((g) => g.name === request.genre);
  const labels = request.instruments.map((n) => options.instruments.find((i) => i.name === n)?.label || n);
  const rows = [
    ["Genre", genre ? genre.label : "—"],
    ["Instruments", labels.length ? labels.join(", ") : "the genre's usual band"],
    ["Tempo", request.tempo !== undefined ? `${request.tempo} BPM` : "the genre's own"],
    ["Key", request.key === undefined ? "the genre's choice"
      : `${request.key}${mode && !mode.capabilities.key ? " (approximated)" : ""}`],
    ["Meter", `${request.meter || options.meter.default}${mode && !mode.capabilities.meter ? " (ignored)" : ""}`],
    ["Length", typeof request.length === "number" ? duration(request.length)
      : String(request.length ?? duration(options.length.default))],
    ["Loop", request.loop ? `yes, whole bars${mode && !mode.capabilities.loop ? " (approximated)" : ""}` : "no"],
    ["Mode", mode ? mode.label : "—"],
    ...(currentQuality() ? [["Sound", currentQuality().label + (currentQuality().channels === 2 &&
      studioMeaning(mode) && studioMeaning(mode) !== "true stereo" ? ` (${studioMeaning(mode)})` : "")]] : []),
    ["Seed", request.seed !== undefined ? String(request.seed) : "random"],
    ["Candidates", String(request.candidates ?? options.candidates.min)],
  ];
  if (mode && !mode.capabilities.midi) rows.push([capabilityLabel("midi"), "a transcription of the audio"]);
  $("summary").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** A random seed within the server's range, from 53 random bits (no visible bias for ranges up to 2^53). */
function surprise() {
  const { min, max } = options.seed;
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  const unit = (a * 2 ** 21 + (b >>> 11)) / 2 ** 53;  // [0, 1)
  $("seed").value = String(min + Math.floor(unit * (max - min + 1)));
  onInput($("seed"));
}

/** The request as the server expects it; text that is not a number goes as typed, for the server to explain. */
function readRequest() {
  const form = new FormData($("generate-form"));
  const body = { genre: form.get("genre"), instruments: form.getAll("instruments"),
                 mode: form.get("mode") || undefined };
  const key = form.get("key");
  if (key && key !== options.key.default) body.key = key;  // "auto" is the server's default
  const meter = form.get("meter");
  if (meter && meter !== options.meter.default) body.meter = meter;
  if (form.get("loop")) body.loop = true;
  const quality = form.get("quality");
  if (quality && options.quality && quality !== options.quality.default) body.quality = quality;
  for (const name of ["tempo", "length", "seed", "candidates"]) {
    const raw = String(form.get(name) ?? "").trim();
    if (raw !== "") body[name] = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  }
  return body;
}

function saveSettings(body) {
  try {
    const { seed, ...rest } = body;
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(rest));
  } catch { /* private mode: nothing to remember */ }
}

function restoreSettings() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "null"); } catch { saved = null; }
  if (!saved) return;
  if (saved.genre) selectGenreQuietly(saved.genre);
  for (const box of document.querySelectorAll('input[name="instruments"]')) {
    box.checked = (saved.instruments || []).includes(box.value);
  }
  if (saved.tempo !== undefined) setPair("tempo", saved.tempo);
  if (saved.length !== undefined) setPair("length", saved.length);
  if (saved.candidates !== undefined) $("candidates").value = saved.candidates;
  if (options.key.keys.includes(saved.key)) $("key").value = saved.key;
  if (options.meter.meters.some((m) => m.name === saved.meter)) $("meter").value = saved.meter;
  $("loop").checked = saved.loop === true;
  if (options.quality && options.quality.qualities.some((q) => q.name === saved.quality)) $("quality").value = saved.quality;
  const mode = document.querySelector(`input[name="mode"][value="${saved.mode}"]:not(:disabled)`);
  if (mode) mode.checked = true;
}

// -- the job ---------------------------------------------------------------------------------
async function submit(event) {
  event.preventDefault();
  if (job) return;
  clearErrors();
  const body = readRequest();
  saveSettings(body);
  setBusy(true);
  showProgress({ status: "queued", progress: 0, message: "sending the request" });
  let started;
  try {
    started = await api("/api/tracks", { method: "POST", body });
  } catch (err) {
    setBusy(false);
    showError(err);
    return;
  }
  job = { id: started.id };
  await follow(job);
}

/** Follow a job to its end; a failure goes to onFailure (the form's fields by default). */
async function follow(current, onFailure = showError) {
  let state;
  try {
    state = await followJob(current.id, showProgress);
  } catch (err) {
    finish();
    onFailure(err);
    return;
  }
  finish();
  if (state.status === "done") {
    const took = state.meta && state.meta.timings && state.meta.timings.total;
    status(typeof took === "number" ? `Done in ${took.toFixed(1)} s.` : "Done.");
    onDone(state);
  } else if (state.status === "error") {
    onFailure(jobError(state, "the generation failed"));
  } else {
    status("Cancelled. Nothing was made.");
  }
}

// -- more like this: a clip, heard, then a generation like it ------------------------------------
async function fromReference() {
  if (job) return;
  clearErrors();
  clearReferenceError();
  const file = $("reference-file").files[0];
  if (!file) {
    showReferenceError("Choose an audio clip first.");
    return;
  }
  const body = new FormData();
  body.append("file", file);
  const mode = currentMode();
  if (mode) body.append("mode", mode.name);
  // without the classifier the genre cannot be heard: the form's genre stands in
  const genre = (document.querySelector('input[name="genre"]:checked') || {}).value;
  if (classifierMissing && genre) body.append("genre", genre);
  if (!$("reference-transfer-box").hidden && $("reference-transfer").checked) body.append("transfer", "true");
  const quality = currentQuality();
  if (quality && quality.name !== options.quality.default) body.append("quality", quality.name);
  $("reference-heard").replaceChildren();
  setBusy(true);
  showProgress({ status: "running", progress: 0, message: `listening to ${file.name}` });
  let started;
  try {
    started = await api("/api/tracks/from-reference", { method: "POST", body });
  } catch (err) {
    setBusy(false);
    showReferenceError(err.message);
    return;
  }
  showHeard(started.heard || {}, started.request || {}, started.transfer);
  job = { id: started.id };
  await follow(job, (err) => showReferenceError(err.message));
}

/** What was heard in the clip, and where each field of the request came from. */
function showHeard(heard, request, transfer) {
  const fromClip = new Set(heard.from_clip || []);
  const source = (name) => fromClip.has(name) ? "heard in the clip" : "from the form";
  const genre = heard.genre
    ? `${genreName(heard.genre.name)} (${Math.round(heard.genre.probability * 100)}% sure)`
    : `not heard${heard.genre_reason ? `: ${heard.genre_reason.split(":")[0].replace(/\.$/, "")}` : ""}`;
  const rows = [
    ["Clip", heard.filename || "—"],
    ["Genre", genre],
    ["Tempo", heard.tempo ? `${Math.round(heard.tempo)} BPM` : "no steady beat"],
    ["Key", heard.key ? heard.key.key : "none heard"],
    ["Length", typeof heard.length === "number" ? duration(heard.length) : "—"],
    ["Making", [request.genre ? `${genreName(request.genre)} (${source("genre")})` : null,
      request.tempo ? `${Math.round(request.tempo)} BPM (${source("tempo")})` : null,
      typeof request.length === "number" ? `${duration(request.length)} (${source("length")})` : null,
      transfer ? "by timbre transfer" : null].filter(Boolean).join(", ") || "—"],
  ];
  $("reference-heard").replaceChildren(h("p", { class: "heard-title" }, "Heard in the clip"),
    h("dl", { class: "summary-list" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function showReferenceError(message) {
  $("reference-error").textContent = message;
  $("reference-error").hidden = false;
  $("reference-file").setAttribute("aria-invalid", "true");
  $("field-reference").classList.add("invalid");
}

function clearReferenceError() {
  $("reference-error").hidden = true;
  $("reference-error").textContent = "";
  $("reference-file").removeAttribute("aria-invalid");
  $("field-reference").classList.remove("invalid");
}

async function cancel() {
  if (!job) return;
  $("cancel").disabled = true;
  $("job-status").textContent = "Cancelling…";
  try {
    await api(`/api/tracks/${job.id}/cancel`, { method: "POST" });
  } catch (err) {
    showError(err);
  }
}

function finish() {
  job = null;
  setBusy(false);
}

function setBusy(busy) {
  $("generate").disabled = busy;
  $("reference-go").disabled = busy;
  $("generate").textContent = busy ? "Generating…" : "Generate";
  $("job").hidden = !busy;
  $("cancel").disabled = !busy;
  if (busy) status("");
}

function showProgress(state) {
  const p = Math.round((state.progress || 0) * 100);
  const words = state.status === "queued" ? "Waiting for a free worker…"
    : state.status === "running" ? `${capitalise(state.message || "working")}…` : capitalise(state.status);
  $("job-status").textContent = words;
  $("job-percent").textContent = `${p}%`;
  $("job-bar").setAttribute("aria-valuenow", String(p));
  $("job-bar").firstElementChild.style.width = `${p}%`;
}

function status(text) {
  $("form-status").textContent = text;
}

// -- errors ----------------------------------------------------------------------------------
function showError(err) {
  const field = err.field && FIELDS.includes(err.field) ? err.field : null;
  const message = err.message || String(err);
  if (field) {
    const box = $(`${field}-error`);
    box.textContent = message;
    box.hidden = false;
    const input = field === "genre" || field === "mode" || field === "instruments" ? $(`field-${field}`) : $(field);
    input.setAttribute("aria-invalid", "true");
    $(`field-${field}`).classList.add("invalid");
    const named = message.toLowerCase().includes(field);
    $("form-error").textContent = named ? message : `${capitalise(field)}: ${message}`;
    $(`field-${field}`).scrollIntoView({ block: "center", behavior: "smooth" });
  } else {
    $("form-error").textContent = message;
  }
  $("form-error").hidden = false;
}

function clearFieldError(field) {
  if (!FIELDS.includes(field)) return;
  const box = $(`${field}-error`);
  if (box.hidden) return;
  box.hidden = true;
  box.textContent = "";
  $(`field-${field}`).classList.remove("invalid");
  document.querySelectorAll("[aria-invalid]").forEach((el) => {
    if (el.id === field || el.id === `field-${field}`) el.removeAttribute("aria-invalid");
  });
  $("form-error").hidden = true;
}

function clearErrors() {
  FIELDS.forEach(clearFieldError);
  $("form-error").hidden = true;
  $("form-error").textContent = "";
}
