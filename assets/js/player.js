// The track player: an <audio> element routed through the Web Audio API, a waveform of the
// whole track (decoded with decodeAudioData, min/max peaks, click or arrow keys to seek) and a
// live frequency-bar visualizer fed by an AnalyserNode. Tracks are mono or stereo (studio quality):
// the waveform draws the peaks of every channel, and soundFormat() says which a track is.
import { clock, ICONS } from "./util.js";

const SEEK_STEP = 5;  // seconds per arrow key on the waveform

export class Player extends EventTarget {
  constructor({ audio, playButton, waveform, visualizer, volume, current, total }) {
    super();
    Object.assign(this, { audio, playButton, waveform, visualizer, volume, current, total });
    this.peaks = null;        // Float32Array of [min, max] pairs over the whole track
    this.objectUrl = null;
    this.graph = null;        // {ctx, analyser, gain}, made on the first play (a user gesture)
    this.levels = null;       // smoothed bar heights of the visualizer
    this.frame = 0;
    this.loadToken = 0;

    playButton.addEventListener("click", () => this.toggle());
    volume.addEventListener("input", () => this.applyVolume());
    for (const type of ["play", "pause", "ended"]) audio.addEventListener(type, () => this.onState());
    for (const type of ["timeupdate", "durationchange", "loadedmetadata", "seeked"]) {
      audio.addEventListener(type, () => this.drawProgress());
    }
    waveform.addEventListener("click", (e) => this.seekFromPointer(e));
    waveform.addEventListener("keydown", (e) => this.seekFromKey(e));
    new ResizeObserver(() => { this.drawWaveform(); this.drawBars(); }).observe(waveform);
    this.setEnabled(false);
    this.onState();
  }

  get loaded() { return Boolean(this.audio.currentSrc); }

  /** Fetch a WAV once: the element plays it from a blob, decodeAudioData draws its waveform. */
  async load(url, { autoplay = false } = {}) {
    const token = ++this.loadToken;
    this.pause();
    this.peaks = null;
    this.drawWaveform();
    const response = await fetch(url);
    if (!response.ok) throw new Error(`could not load the audio (${response.status})`);
    const blob = await response.blob();
    if (token !== this.loadToken) return;  // a newer load won
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = URL.createObjectURL(blob);
    this.audio.src = this.objectUrl;
    this.setEnabled(true);
    const metadata = new Promise((resolve) => this.audio.addEventListener("loadedmetadata", resolve, { once: true }));
    this.decodePeaks(blob, token);
    await metadata;
    if (autoplay) await this.play();
  }

  async decodePeaks(blob, token) {
    try {
      const data = await blob.arrayBuffer();
      // decoding needs no running context; a stereo file keeps its two channels (at this rate)
      const decoder = new OfflineAudioContext(1, 1, 22050);
      const buffer = await decoder.decodeAudioData(data);
      if (token !== this.loadToken) return;
      this.peaks = computePeaks(buffer, 2048);
    } catch (err) {
      this.peaks = null;
      console.warn("waveform unavailable:", err);
    }
    this.drawWaveform();
  }

  /** The Web Audio graph: element -> analyser -> gain (volume) -> speakers. */
  ensureGraph() {
    if (!this.graph) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return null;
      const ctx = new Context();
      const source = ctx.createMediaElementSource(this.audio);
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      analyser.smoothingTimeConstant = 0.72;
      const gain = ctx.createGain();
      source.connect(analyser).connect(gain).connect(ctx.destination);
      this.graph = { ctx, analyser, gain, bins: new Uint8Array(analyser.frequencyBinCount) };
      this.applyVolume();
    }
    if (this.graph.ctx.state === "suspended") this.graph.ctx.resume();
    return this.graph;
  }

  applyVolume() {
    const v = Number(this.volume.value);
    if (this.graph) this.graph.gain.gain.value = v;
    else this.audio.volume = v;
    this.volume.setAttribute("aria-valuetext", `${Math.round(v * 100)}%`);
  }

  async play() {
    if (!this.loaded) return;
    this.ensureGraph();
    try {
      await this.audio.play();
    } catch (err) {
      if (err.name !== "AbortError") this.dispatchEvent(new CustomEvent("error", { detail: err }));
    }
  }

  pause() { this.audio.pause(); }

  toggle() { return this.audio.paused ? this.play() : this.pause(); }

  seek(seconds) {
    const d = this.audio.duration;
    if (!Number.isFinite(d)) return;
    this.audio.currentTime = Math.min(Math.max(seconds, 0), d);
    this.drawProgress();
  }

  seekFromPointer(event) {
    const rect = this.waveform.getBoundingClientRect();
    this.seek(((event.clientX - rect.left) / rect.width) * this.audio.duration);
  }

  seekFromKey(event) {
    const t = this.audio.currentTime, d = this.audio.duration;
    const to = { ArrowLeft: t - SEEK_STEP, ArrowDown: t - SEEK_STEP, ArrowRight: t + SEEK_STEP,
                 ArrowUp: t + SEEK_STEP, PageDown: t - 30, PageUp: t + 30, Home: 0, End: d }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    this.seek(to);
  }

  setEnabled(on) {
    this.playButton.disabled = !on;
    this.waveform.tabIndex = on ? 0 : -1;
    this.waveform.setAttribute("aria-disabled", String(!on));
  }

  onState() {
    const playing = !this.audio.paused && !this.audio.ended;
    this.playButton.innerHTML = playing ? ICONS.pause : ICONS.play;
    this.playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
    this.playButton.classList.toggle("playing", playing);
    this.dispatchEvent(new CustomEvent(playing ? "playing" : "paused"));
    if (playing) this.animate();
  }

  // -- drawing -----------------------------------------------------------------------------
  drawProgress() {
    const t = this.audio.currentTime || 0, d = this.audio.duration;
    this.current.textContent = clock(t);
    this.total.textContent = clock(Number.isFinite(d) ? d : 0);
    this.waveform.setAttribute("aria-valuemax", String(Math.round(Number.isFinite(d) ? d : 0)));
    this.waveform.setAttribute("aria-valuenow", String(Math.round(t)));
    this.waveform.setAttribute("aria-valuetext", `${clock(t)} of ${clock(d)}`);
    this.drawWaveform();
  }

  drawWaveform() {
    const { ctx, width, height } = fitCanvas(this.waveform);
    ctx.clearRect(0, 0, width, height);
    const dpr = window.devicePixelRatio || 1;
    const bar = 2 * dpr, gap = 1 * dpr, step = bar + gap;
    const columns = Math.max(1, Math.floor(width / step));
    const d = this.audio.duration;
    const played = Number.isFinite(d) && d > 0 ? (this.audio.currentTime / d) * width : 0;
    const mid = height / 2;
    const gradient = ctx.createLinearGradient(0, 0, width, 0);
    gradient.addColorStop(0, "#8b6cff");
    gradient.addColorStop(1, "#ff5fa8");
    for (let c = 0; c < columns; c++) {
      let lo = 0, hi = 0;
      if (this.peaks) {
        const n = this.peaks.length / 2;
        const a = Math.floor((c / columns) * n), b = Math.max(a + 1, Math.floor(((c + 1) / columns) * n));
        lo = 1; hi = -1;
        for (let i = a; i < b; i++) {
          lo = Math.min(lo, this.peaks[2 * i]);
          hi = Math.max(hi, this.peaks[2 * i + 1]);
        }
      }
      const top = mid - Math.max(hi, 0.012) * mid * 0.95;
      const bottom = mid - Math.min(lo, -0.012) * mid * 0.95;
      const x = c * step;
      ctx.fillStyle = x < played ? gradient : "rgba(255,255,255,0.28)";
      ctx.fillRect(x, top, bar, bottom - top);
    }
    if (played > 0) {
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(Math.min(played, width - dpr), 0, dpr, height);
    }
  }

  /** Redraw the bars every frame while playing, and until they have fallen after a pause. */
  animate() {
    if (this.frame) return;
    const tick = () => {
      const moving = this.drawBars();
      if (!this.audio.paused) this.drawWaveform();
      this.frame = (!this.audio.paused || moving) ? requestAnimationFrame(tick) : 0;
    };
    this.frame = requestAnimationFrame(tick);
  }

  /** Frequency bars on log-spaced bands up to 11 kHz (the tracks are 22.05 kHz). Returns true while any bar moves. */
  drawBars() {
    const { ctx, width, height } = fitCanvas(this.visualizer);
    const dpr = window.devicePixelRatio || 1;
    const count = Math.max(16, Math.min(64, Math.floor(width / (9 * dpr))));
    if (!this.levels || this.levels.length !== count) this.levels = new Float32Array(count);
    const graph = this.graph;
    const playing = graph && !this.audio.paused;
    if (playing) graph.analyser.getByteFrequencyData(graph.bins);
    let moving = false;
    const hzPerBin = graph ? graph.ctx.sampleRate / graph.analyser.fftSize : 1;
    for (let i = 0; i < count; i++) {
      let target = 0;
      if (playing) {
        const f0 = 40 * Math.pow(11025 / 40, i / count), f1 = 40 * Math.pow(11025 / 40, (i + 1) / count);
        const a = Math.floor(f0 / hzPerBin), b = Math.max(a + 1, Math.ceil(f1 / hzPerBin));
        let sum = 0;
        for (let k = a; k < b; k++) sum += graph.bins[k] || 0;
        target = sum / (b - a) / 255;
      }
      const next = target > this.levels[i] ? target : this.levels[i] * 0.9;
      if (Math.abs(next - this.levels[i]) > 0.002 || next > 0.002) moving = true;
      this.levels[i] = next < 0.002 ? 0 : next;
    }
    ctx.clearRect(0, 0, width, height);
    const slot = width / count, barWidth = Math.max(dpr, slot * 0.62);
    const gradient = ctx.createLinearGradient(0, height, 0, 0);
    gradient.addColorStop(0, "#6d4aff");
    gradient.addColorStop(0.6, "#c04bff");
    gradient.addColorStop(1, "#ff7ab6");
    ctx.fillStyle = gradient;
    for (let i = 0; i < count; i++) {
      const barHeight = Math.max(2 * dpr, this.levels[i] * height);
      const x = i * slot + (slot - barWidth) / 2;
      roundedBar(ctx, x, height - barHeight, barWidth, barHeight, Math.min(barWidth / 2, 3 * dpr));
    }
    return moving;
  }
}

/** A track's sample rate and channels in words, from its metadata: "44.1 kHz stereo",
"22.05 kHz mono"; a studio track of a mode that makes mono says it is upsampled and centred. Tracks
stored before qualities existed are 22.05 kHz mono. */
export function soundFormat(meta, { detail = false } = {}) {
  const q = (meta && meta.quality) || {};
  const rate = q.sample_rate || (meta && meta.details && meta.details.sample_rate) || 22050;
  const channels = q.channels || 1;
  const words = `${Number((rate / 1000).toFixed(2))} kHz ${channels === 2 ? "stereo" : "mono"}`;
  if (!detail || channels !== 2 || !q.stereo) return words;
  return `${words} (${q.stereo})`;
}

/** Min/max of each of `buckets` equal slices, over every channel: [min0, max0, min1, max1, ...]. */
function computePeaks(buffer, buckets) {
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c));
  const length = channels[0].length;
  const n = Math.min(buckets, length) || 1;
  const peaks = new Float32Array(2 * n);
  let top = 1e-6;
  for (let b = 0; b < n; b++) {
    const start = Math.floor((b / n) * length), end = Math.floor(((b + 1) / n) * length);
    let lo = 0, hi = 0;
    for (const data of channels) {
      for (let i = start; i < end; i++) {
        const v = data[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    peaks[2 * b] = lo;
    peaks[2 * b + 1] = hi;
    top = Math.max(top, -lo, hi);
  }
  for (let i = 0; i < peaks.length; i++) peaks[i] /= top;  // fill the height whatever the loudness
  return peaks;
}

function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const height = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  return { ctx: canvas.getContext("2d"), width, height };
}

function roundedBar(ctx, x, y, w, h, r) {
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(x, y, w, h, [r, r, 0, 0]);
  else ctx.rect(x, y, w, h);
  ctx.fill();
}
