"""MIDI: serialise scores, transcribe audio to a score (basic-pitch's bundled ONNX model).

Rendering a score to audio through a SoundFont lives here too (see render()).
"""
from __future__ import annotations

import io
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from .options import SAMPLE_RATE

_transcribe_lock = threading.Lock()


def to_bytes(score: pretty_midi.PrettyMIDI) -> bytes:
    """A Standard MIDI File as bytes."""
    buf = io.BytesIO()
    score.write(buf)
    return buf.getvalue()


@lru_cache(maxsize=1)
def _basic_pitch_model():
    """Load basic-pitch's ICASSP 2022 note model through onnxruntime, once per process."""
    from basic_pitch import inference  # heavy import, only when a MIDI is asked for
    onnx = Path(inference.__file__).parent / "saved_models" / "icassp_2022" / "nmp.onnx"
    return inference, inference.Model(onnx)


def transcribe(y: np.ndarray, sr: int, *, tempo: float | None = None,
               program: int = 0) -> pretty_midi.PrettyMIDI:
    """Polyphonic audio -> MIDI score with basic-pitch (Bittner et al. 2022), run on ONNX.

    y: float mono audio, shape (n,). tempo: written into the file when known, so a
    DAW lines the notes up with bars. program: the GM program of the transcribed part.
    """
    inference, model = _basic_pitch_model()
    fd, path = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        sf.write(path, np.asarray(y, dtype=np.float32), sr, subtype="PCM_16")
        with _transcribe_lock:  # onnxruntime sessions are thread-safe, but basic-pitch prints
            _, score, _ = inference.predict(
                path, model, onset_threshold=0.5, frame_threshold=0.3,
                minimum_note_length=80, midi_tempo=float(tempo or 120.0))
    finally:
        os.unlink(path)
    for inst in score.instruments:
        inst.program = program
        inst.name = inst.name or "transcription"
    return score


# --- rendering through a SoundFont -------------------------------------------------------

DEFAULT_SOUNDFONT = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
"""The small General MIDI SoundFont that pretty_midi ships (no download needed)."""

SYSTEM_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),          # Debian/Ubuntu: fluid-soundfont-gm
    Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),   # musescore-general-soundfont(-small)
    Path("/usr/share/sounds/sf2/MuseScore_General.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),          # Fedora, Arch: fluid-soundfont-gm, soundfont-fluid
)
"""General MIDI fonts a package manager installs, best first (all MIT-licensed)."""
SHARED_ABOVE = 32 * 2 ** 20
"""Fonts larger than this (bytes) are loaded into one synthesizer per process that renders take
turns on; smaller ones get a synthesizer per concurrent render."""

REVERB_SECONDS = 1.6
REVERB_WET = 0.5
_synths: dict[tuple[Path, int], list] = {}   # (font, sr) -> idle synthesizers, font loaded
_synths_lock = threading.Lock()


def soundfont_path(soundfont: Path | str | None = None) -> Path:
    """The SoundFont to use: the argument, else $MELODYMAKER_SOUNDFONT, else the GM default."""
    from .errors import GenerationFailed
    path = Path(soundfont or os.environ.get("MELODYMAKER_SOUNDFONT") or DEFAULT_SOUNDFONT)
    path = path.expanduser()
    if not path.is_file():
        raise GenerationFailed(f"SoundFont not found: {path}; point MELODYMAKER_SOUNDFONT "
                               "at an .sf2 or .sf3 file", field="soundfont")
    return path


def request_soundfont(models_dir: Path | None = None) -> Path:
    """The best General MIDI font on this machine, for compose requests: the first .sf2/.sf3 in
    models/soundfonts/ (yours, git-ignored), else FluidR3_GM, else MuseScore General, else the
    TimGM6mb that pretty_midi ships. The built-in library and evaluate stay on TimGM6mb."""
    own = sorted(Path(models_dir, "soundfonts").glob("*.sf[23]")) if models_dir else []
    return next((p for p in (*own, *SYSTEM_SOUNDFONTS) if p.is_file()), DEFAULT_SOUNDFONT)


def soundfont_info(path: Path) -> dict:
    """What the page and the metadata say about a font: its name, path and size."""
    return {"name": path.name, "path": str(path), "megabytes": round(path.stat().st_size / 2 ** 20, 1),
            "bundled": path == DEFAULT_SOUNDFONT}


_font_turns: dict[tuple[Path, int], threading.Lock] = {}   # a large font's one synthesizer, taken in turn


def _synth_key(path: Path, sr: int) -> tuple[Path, int]:
    """Where a font's synthesizers are kept: per output rate for a small font; one for every rate
    for a large one, retargeted to the rate a render asks for (the samples stay the font's own)."""
    return (path, 0) if path.stat().st_size > SHARED_ABOVE else (path, sr)


def _take_synth(path: Path, sr: int):
    """A synthesizer with the font loaded (a synth holds playing state, so one render at a time
    uses it). Each font is parsed once per process. A small font gets a synthesizer per
    concurrent render and rate; a large one (over SHARED_ABOVE) has one, which renders at any rate
    take in turn, so the process holds one copy of its samples (FluidR3's are about 0.46 GB)."""
    import tinysoundfont
    key = _synth_key(path, sr)
    turn = None
    if key[1] == 0:
        with _synths_lock:
            turn = _font_turns.setdefault(key, threading.Lock())
        turn.acquire()
    with _synths_lock:
        idle = _synths.setdefault(key, [])
        synth = idle.pop() if idle else None
    try:
        if synth is None:
            synth = tinysoundfont.Synth(samplerate=sr)
            synth.sfid = synth.sfload(str(path))
        elif synth.samplerate != sr:  # a large font's one synthesizer, at another rate this time
            synth.samplerate = sr
            for font in synth.soundfonts.values():
                font.set_output(tinysoundfont._tinysoundfont.OutputMode.StereoInterleaved, sr, synth.gain)
    except BaseException:
        if turn is not None:
            turn.release()
        raise
    return synth


def _give_back(path: Path, sr: int, synth) -> None:
    key = _synth_key(path, sr)
    with _synths_lock:
        _synths[key].append(synth)
        turn = _font_turns.get(key)
    if turn is not None:
        turn.release()


def loaded_synths() -> dict[str, int]:
    """Font name -> synthesizers this process has loaded (each holds a copy of its samples)."""
    with _synths_lock:
        return {path.name: len(idle) for (path, _), idle in _synths.items()}


@lru_cache(maxsize=8)
def _reverb_ir(sr: int, side: int = 0) -> np.ndarray:
    """A synthetic room: 15 ms pre-delay, then darkening, exponentially decaying noise. side: 0 for
    mono and the left ear, 1 for the right (the same room drawn from other noise: a stereo room's
    two ears hear decorrelated tails)."""
    from scipy.signal import lfilter
    n = int(REVERB_SECONDS * sr)
    t = np.arange(n) / sr
    noise = np.random.default_rng(91 + side).standard_normal(n)
    tail = noise * np.exp(-6.91 * t / REVERB_SECONDS)          # -60 dB at REVERB_SECONDS
    tail = lfilter([0.35], [1.0, -0.65], tail)                  # high frequencies die first
    ir = np.concatenate([np.zeros(int(0.015 * sr)), tail])
    return (ir / np.sqrt(np.sum(ir ** 2))).astype(np.float32)


def _events(inst: pretty_midi.Instrument, sr: int) -> list[tuple]:
    """(sample, order, kind, a, b) sorted so controllers precede notes and offs precede ons."""
    ev = [(int(c.time * sr), 0, "cc", c.number, c.value) for c in inst.control_changes]
    ev += [(int(b.time * sr), 1, "bend", b.pitch + 8192, 0) for b in inst.pitch_bends]
    for n in inst.notes:
        ev.append((int(n.end * sr), 2, "off", n.pitch, 0))
        ev.append((int(n.start * sr), 3, "on", n.pitch, n.velocity))
    ev.sort(key=lambda e: (e[0], e[1]))
    return ev


def _render_part(synth, inst: pretty_midi.Instrument, n: int, sr: int) -> np.ndarray:
    """One instrument alone, stereo (n, 2) at its pan (CC10); rendering parts apart lets each have
    its own reverb send."""
    chan = 9 if inst.is_drum else 0
    try:  # on drums the program picks a GM2 kit (8 room, 25 TR-808, 40 brush, ...)
        synth.program_select(chan, synth.sfid, 128 if inst.is_drum else 0, inst.program,
                             inst.is_drum)
    except RuntimeError:  # a font without that kit or program: fall back to the first one
        synth.program_select(chan, synth.sfid, 128 if inst.is_drum else 0, 0, inst.is_drum)
    for cc, value in ((121, 0), (7, 100), (10, 64), (11, 127)):
        synth.control_change(chan, cc, value)
    synth.pitchbend(chan, 8192)
    buf = memoryview(bytearray(n * 8))
    pos = 0
    for at, _, kind, a, b in _events(inst, sr):
        at = min(at, n)
        if at > pos:
            synth.generate(at - pos, buffer=buf[pos * 8: at * 8])
            pos = at
        if kind == "on":
            synth.noteon(chan, a, b)
        elif kind == "off":
            synth.noteoff(chan, a)
        elif kind == "cc":
            synth.control_change(chan, a, b)
        else:
            synth.pitchbend(chan, a)
    if pos < n:
        synth.generate(n - pos, buffer=buf[pos * 8:])
    synth.sounds_off()
    synth.generate(256)  # let the quick release finish before the next part
    return np.frombuffer(buf, dtype=np.float32).reshape(-1, 2)


def render(score: pretty_midi.PrettyMIDI, sr: int = SAMPLE_RATE, *,
           soundfont: Path | None = None, tail: float = 1.0, stereo: bool = False) -> np.ndarray:
    """Render a score through a SoundFont; float32 mono, shape (n,), or stereo (n, 2). See render_parts()."""
    return render_parts(score, sr, soundfont=soundfont, tail=tail, stereo=stereo)[0]


def render_parts(score: pretty_midi.PrettyMIDI, sr: int = SAMPLE_RATE, *, soundfont: Path | None = None,
                 tail: float = 1.0, group=None, stereo: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render a score through a SoundFont with TinySoundFont; float32 mono, shape (n,), or with
    `stereo` (n, 2): left and right as the synthesizer pans each part (CC10).

    n covers the score plus `tail` seconds of release and reverb. Programs, volume/pan/expression
    CCs, note on/off and pitch bends go to the synthesizer; TinySoundFont has no effects, so
    each part's reverb send (CC91, GM default 40) feeds one synthetic room added here (stereo: each
    side's send into its own ear of the room, two decorrelated tails of the same decay).
    Chorus (CC93) is not rendered. Peaks above 0.99 are scaled down, never clipped. Mono is the
    stereo render's channels averaged, as it always was.
    group: instrument -> a name (its role); given, the parts are also rendered summed by group,
    each with its own share of the room and the mix's peak scale, so the groups sum to the mix.
    Returns (the mix, {group: audio}).
    """
    path = soundfont_path(soundfont)
    n = int(np.ceil((score.get_end_time() + tail) * sr))
    shape = (n, 2) if stereo else (n,)
    dry = np.zeros(shape, dtype=np.float32)
    send = np.zeros(shape, dtype=np.float32)
    groups: dict[str, list[np.ndarray]] = {}   # name -> [dry, send]
    synth = _take_synth(path, sr)
    try:
        for inst in score.instruments:
            if not inst.notes:
                continue
            part = _render_part(synth, inst, n, sr)
            if not stereo:
                part = part.mean(axis=1)
            sends = [c.value for c in inst.control_changes if c.number == 91]
            dry += part
            send += part * ((sends[0] if sends else 40) / 127.0)
            if group is not None:
                own = groups.setdefault(group(inst), [np.zeros(shape, np.float32), np.zeros(shape, np.float32)])
                own[0] += part
                own[1] += part * ((sends[0] if sends else 40) / 127.0)
    finally:
        _give_back(path, sr, synth)
    y = dry + REVERB_WET * _room(send, sr)
    stems = {name: own_dry + REVERB_WET * _room(own_send, sr) for name, (own_dry, own_send) in groups.items()}
    peak = float(np.max(np.abs(y))) if n else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
        for part in stems.values():
            part *= 0.99 / peak
    return y.astype(np.float32), {name: part.astype(np.float32) for name, part in stems.items()}


def _room(send: np.ndarray, sr: int) -> np.ndarray:
    """The synthetic room's answer to a reverb send, the send's length: mono (n,) through one
    impulse response, stereo (n, 2) each side through its own (_reverb_ir's side)."""
    from scipy.signal import oaconvolve
    n = len(send)
    if send.ndim == 1:
        return oaconvolve(send, _reverb_ir(sr))[:n].astype(np.float32)
    return np.stack([oaconvolve(send[:, c], _reverb_ir(sr, c))[:n] for c in range(send.shape[1])],
                    axis=1).astype(np.float32)
