// The library: Discover's genre cards with demo clips, the "similar" list, and one shared
// preview element that plays a library clip (as WAV from /api/library/...).
import { api } from "./api.js";
import { $, h, clock, bpm, percent, encodePath, GENRE_COLOURS, ICONS } from "./util.js";

const DEMOS_PER_GENRE = 3;
const preview = { audio: null, button: null, onStart: () => {} };

export function initPreview({ onStart }) {
  preview.audio = $("preview");
  preview.onStart = onStart;
  const audio = preview.audio;
  audio.addEventListener("play", () => markButton(true));
  audio.addEventListener("pause", () => markButton(false));
  audio.addEventListener("ended", () => markButton(false));
  audio.addEventListener("timeupdate", () => {
    const bar = preview.button && preview.button.closest(".clip")?.querySelector(".clip-progress span");
    if (bar && audio.duration) bar.style.width = `${(audio.currentTime / audio.duration) * 100}%`;
  });
  audio.addEventListener("error", () => {
    if (preview.button) preview.button.closest(".clip")?.classList.add("broken");
    markButton(false);
  });
}

export function pausePreview() {
  if (preview.audio && !preview.audio.paused) preview.audio.pause();
}

export function togglePreviewIfLoaded() {
  if (!preview.audio || !preview.audio.currentSrc) return false;
  if (preview.audio.paused) { preview.onStart(); preview.audio.play(); } else preview.audio.pause();
  return true;
}

function togglePreview(url, button) {
  const audio = preview.audio;
  if (preview.button === button && audio.currentSrc) {
    if (audio.paused) { preview.onStart(); audio.play(); } else audio.pause();
    return;
  }
  if (preview.button) { markButton(false); resetBar(preview.button); }
  preview.button = button;
  audio.src = url;
  preview.onStart();
  audio.play().catch(() => markButton(false));
}

function markButton(playing) {
  const b = preview.button;
  if (!b) return;
  b.innerHTML = playing ? ICONS.pause : ICONS.play;
  b.setAttribute("aria-label", `${playing ? "Pause" : "Play"} ${b.dataset.title}`);
  b.classList.toggle("playing", playing);
}

function resetBar(button) {
  const bar = button.closest(".clip")?.querySelector(".clip-progress span");
  if (bar) bar.style.width = "0";
}

/** One playable library clip as a list item. */
function clipItem(clip, { extra = null } = {}) {
  const url = encodePath(clip.url);
  const title = clip.name.replace(/\.(au|wav|mp3|flac|ogg)$/i, "");
  const button = h("button", { type: "button", class: "icon-btn", html: ICONS.play,
    "aria-label": `Play ${title}`, dataset: { title } });
  button.addEventListener("click", () => togglePreview(url, button));
  return h("li", { class: "clip", style: `--genre: ${GENRE_COLOURS[clip.genre] || "#6d4aff"}` },
    button,
    h("span", { class: "clip-text" },
      h("span", { class: "clip-name" }, title),
      h("span", { class: "clip-meta" }, [clock(clip.duration), clip.tempo ? bpm(clip.tempo) : null, extra]
        .filter(Boolean).join(" · ")),
      h("span", { class: "clip-progress", "aria-hidden": "true" }, h("span"))));
}

// -- Discover ----------------------------------------------------------------------------------
export async function renderDiscover(options, { onPick }) {
  const library = await api("/api/library");
  const byGenre = {};
  for (const clip of library.clips) (byGenre[clip.genre] ||= []).push(clip);
  const total = library.count;
  const composer = options.modes.some((m) => m.name === "compose" && m.available);
  const genresWithClips = Object.values(library.per_genre).filter((n) => n > 0).length;
  $("library-summary").textContent = total
    ? `${total} clip${total === 1 ? "" : "s"} in ${genresWithClips} genre${genresWithClips === 1 ? "" : "s"}. Play a few, then make your own.`
    : "The library is empty: put audio in genres/ (or run ./run.sh once to build the default library).";
  $("genre-grid").replaceChildren(...options.genres.map((g) => {
    const clips = byGenre[g.name] || [];
    const n = library.per_genre[g.name] || 0;
    return h("li", { class: "genre-card", style: `--genre: ${GENRE_COLOURS[g.name] || "#6d4aff"}` },
      h("div", { class: "genre-card-head" },
        h("h3", {}, g.label),
        h("span", { class: "muted small" }, n ? `${n} clip${n === 1 ? "" : "s"}` : "no clips yet")),
      clips.length
        ? h("ul", { class: "clip-list compact", "aria-label": `${g.label} demos` },
          clips.slice(0, DEMOS_PER_GENRE).map((c) => clipItem(c)))
        : h("p", { class: "muted small empty-genre" }, composer
          ? "No demo in the library. The Composer mode can still make this genre."
          : "No demo in the library yet."),
      h("a", { class: "btn secondary small", href: "#create", onclick: () => onPick(g.name) },
        `Make ${g.label}`));
  }));
  return library;
}

// -- Similar in the library ----------------------------------------------------------------------
export async function renderSimilar(trackId) {
  const list = $("similar"), note = $("similar-status");
  list.replaceChildren();
  note.textContent = "Looking for similar clips…";
  try {
    const { similar } = await api(`/api/tracks/${trackId}/similar?k=5`);
    if (trackId !== $("similar-card").dataset.track) return;
    note.textContent = similar.length ? "" : "No similar clips found.";
    list.replaceChildren(...similar.map((c) => clipItem(c, { extra: `${c.genre}, ${percent(c.score)} match` })));
  } catch (err) {
    if (trackId !== $("similar-card").dataset.track) return;
    note.replaceChildren(err.status === 503
      ? h("span", {}, "Recommendations are unavailable here. ", h("small", { class: "reason" }, err.message))
      : `Could not load similar clips. ${err.message}`);
  }
}
