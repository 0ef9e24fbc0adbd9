"""The composer: a genre style, tempo, length, instruments and seed -> a multi-track MIDI score."""
# Instruments: each chosen instrument plays in its catalogue role (options.INSTRUMENTS) and
# replaces the genre's default there; roles nobody chose keep the genre's default (classical has
# no drums unless "drums" is chosen). Two instruments in one role share it: a second harmony
# instrument plays sustained pads, a second lead answers the first phrase by phrase.
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pretty_midi

from ..keys import Key
from ..options import GENRES, INSTRUMENTS, METER_DEFAULT, METERS, ROLES, SAMPLE_RATE, Meter
from . import parts
from .styles import STYLE_VERSION, STYLES, MeterStyle, Section, Style, style_of
from .theory import Chord, key_name, parse_chord

# How much louder (dB) each instrument must be played to sit level with the others in the GM
# font pretty_midi ships; measured on three-note chords at velocity 90, with bass and lead
# (one note at a time) lifted 5 and 3.5 dB. A user's own SoundFont may want other values.
TRIM_DB = {"piano": 6, "electric piano": -2, "organ": -1.5, "guitar": 2, "electric guitar": 3,
           "distorted guitar": -2, "strings": 2.5, "synth pad": -1.5, "brass": 3, "banjo": -3.5,
           "bass": -2.5, "upright bass": -1.5, "synth bass": -3, "cello": -1, "drums": 0,
           "saxophone": -4.5, "trumpet": -2.5, "flute": -7, "violin": -3, "clarinet": 0,
           "synth": 5, "lead guitar": 4, "harmonica": 0, "vibraphone": -2.5}
KIT_TRIM_DB = {0: 0, 8: -4, 16: -2.5, 24: -2.5, 25: -3.5, 32: 0, 40: 1, 48: 1}

RING_MIN = 1.5
"""Seconds the final chord rings at least (shorter on very short requests)."""


@dataclass
class Bar:
    """One bar of the plan: where it starts, its chords and its place in the form."""
    index: int
    start: float
    section: Section
    chords: list[tuple[float, Chord]]   # (beat offset in the bar, chord)
    section_start: bool = False
    fill: bool = False
    phrase: int = 0                     # which occurrence of its section this bar belongs to

    def chord_at(self, beat: float) -> Chord:
        return [c for b, c in self.chords if b <= beat + 1e-9][-1]


@dataclass
class Song:
    """Everything the part writers share."""
    style: Style
    tempo: float
    tonic: int
    mode: str
    length: float
    bars: list[Bar]
    ending: float                       # when the final chord starts
    final: Chord
    rng: random.Random
    cast: dict[str, list[str]]
    meter: Meter = METERS[METER_DEFAULT]
    patterns: MeterStyle | None = None  # the style's patterns in this meter
    loop: bool = False                  # the last bar leads into the first; no ending

    @property
    def beat(self) -> float:
        """Seconds per quarter note (the tempo counts dotted quarters in 6/8)."""
        if self.meter.quarters_per_beat == 1:
            return 60.0 / self.tempo
        return 60.0 / self.tempo / self.meter.quarters_per_beat

    @property
    def steps(self) -> int:
        """Sixteenths per bar."""
        return self.meter.steps

    @property
    def pulse(self) -> int:
        """Sixteenths per tempo beat: where the strong notes fall."""
        return int(round(4 * self.meter.quarters_per_beat))

    def time(self, bar: Bar, step: float) -> float:
        """Seconds at a sixteenth-note step of a bar, with the style's swing."""
        unit = self.style.swing_unit
        span = 2 * unit
        pair, within = divmod(step, span)
        # players swing less the faster they go: full swing up to 120 BPM, a third of it at 190
        r = 0.5 + (self.style.swing - 0.5) * min(1.0, max(0.3, (220.0 - self.tempo) / 100.0))
        if self.meter.quarters_per_beat != 1:
            r = 0.5  # compound time: the eighths are already in threes
        frac = within / span
        swung = frac / 0.5 * r if frac <= 0.5 else r + (frac - 0.5) / 0.5 * (1 - r)
        return bar.start + (pair + swung) * span / 4 * self.beat

    def next_root(self, bar: Bar, beat: float) -> int:
        later = [c for b, c in bar.chords if b > beat + 1e-9]
        if later:
            return later[0].root
        if bar.index + 1 < len(self.bars):
            return self.bars[bar.index + 1].chords[0][1].root
        return self.final.root


def cast_roles(style: Style, chosen: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Who plays each role: the chosen instruments replace the genre's default in their roles."""
    cast = {role: [style.instruments[role][0]] for role in ROLES}
    if not style.drums_by_default:
        cast["drums"] = []
    picked: dict[str, list[str]] = {}
    for name in chosen:
        if name not in INSTRUMENTS:
            raise ValueError(f"unknown instrument {name!r}")
        picked.setdefault(INSTRUMENTS[name].role, []).append(name)
    cast.update(picked)
    return cast


def _bar_chords(text: str, tonic: int, meter: Meter) -> list[tuple[float, Chord]]:
    """(quarter-note offset, chord) for each chord of a bar; a bar's chords split it on its beats."""
    symbols = text.split()
    if meter.name == METER_DEFAULT:
        return [(4.0 * k / len(symbols), parse_chord(s, tonic)) for k, s in enumerate(symbols)]
    return [(meter.quarters_per_beat * round(meter.beats * k / len(symbols)), parse_chord(s, tonic))
            for k, s in enumerate(symbols)]


def plan(style: Style, tonic: int, mode: str, n_bars: int, bar_len: float,
         rng: random.Random, meter: Meter = METERS[METER_DEFAULT], loop: bool = False, *,
         after: list[Bar] | None = None) -> list[Bar]:
    """Lay out the form: intro, sections cycled with fills at their ends, a cadence bar last.
    A loop has no intro: its cadence bar and fill lead back into its first bar. after: the bars of
    a song this one continues (an extension): no intro, and the form goes on with the section
    after its last one, with its progressions (drawn again from its rng, given here afresh)."""
    progressions = {name: rng.choice(variants)
                    for name, variants in style.progressions[mode].items()}
    order: list[tuple[Section, str, bool]] = []   # (section, chords, starts a section)
    if style.intro is not None and n_bars >= 8 and not loop and after is None:
        intro = progressions[style.intro.name][-(4 if n_bars >= 16 else 2):]
        order += [(style.intro, chords, k == 0) for k, chords in enumerate(intro)]
    occurrence = sum(b.section_start and b.section is not style.intro for b in after or [])
    while len(order) < n_bars:
        section = style.form[occurrence % len(style.form)]
        order += [(section, chords, k == 0)
                  for k, chords in enumerate(progressions[section.name])]
        occurrence += 1
    order = order[:n_bars]
    bars, phrase = [], -1
    for i, (section, chords, starts) in enumerate(order):
        phrase += starts
        if i == n_bars - 1:
            chords = style.cadence[mode]
        bars.append(Bar(i, i * bar_len, section, _bar_chords(chords, tonic, meter),
                        section_start=starts, phrase=phrase))
    for i, bar in enumerate(bars):
        bar.fill = i == n_bars - 1 or bars[i + 1].section_start
    return bars


def compose(genre: str, *, tempo: float | None, length: float, instruments: tuple[str, ...] = (),
            seed: int, kit: int | None = None, key: Key | None = None,
            meter: str = METER_DEFAULT, loop: bool = False, style_version: int = STYLE_VERSION
            ) -> tuple[pretty_midi.PrettyMIDI, dict]:
    """Write a genre arrangement as a multi-track score of exactly `length` seconds.

    tempo: BPM (dotted quarters in 6/8), or None for a seeded tempo in the genre's range. key: the
    key to write in, or None for a seeded one of the genre's usual keys. meter: one of the style's
    meter_names (ValueError otherwise). The music ends with the style's cadence and a tonic chord
    that rings from the last bar line to `length`; a loop (length a whole number of bars,
    Meter.loop_bars) has no final chord: its last bar is the cadence that leads into its first, and
    notes that ring past the end carry on at the start (perform() wraps the audio the same way).
    kit: the GM2 drum kit, default the style's first. Returns (score, facts): facts has
    tempo, key, instruments by role and the form.
    """
    if genre not in STYLES:
        raise ValueError(f"unknown genre {genre!r}; one of {', '.join(GENRES)}")
    style = style_of(genre, style_version)
    if meter not in style.meter_names:
        raise ValueError(f"{genre} is not written in {meter}; its meters: {', '.join(style.meter_names)}")
    time_sig = METERS[meter]
    rng = random.Random(f"compose:{genre}:{seed}")
    bpm = float(tempo) if tempo else float(rng.randint(*style.tempo))
    # drawn even when the key is given, so that the rest of the song is the same seed's song
    tonic, mode = rng.choice(style.tonics), rng.choice(style.modes)
    if key is not None:
        tonic, mode = key.tonic, key.mode
    bar_len = time_sig.bar_seconds(bpm)
    if loop:
        n_bars = max(1, int(round(length / bar_len)))
    else:
        ring = min(RING_MIN, 0.3 * length)
        n_bars = max(0, int((length - ring) / bar_len))
    bars = plan(style, tonic, mode, n_bars, bar_len, rng, time_sig, loop)
    cast = cast_roles(style, tuple(instruments))
    song = Song(style, bpm, tonic, mode, float(length), bars, n_bars * bar_len,
                parse_chord(style.final[mode], tonic), rng, cast, time_sig, style.patterns(meter),
                loop)

    # a MIDI file's tempo counts quarter notes
    score = pretty_midi.PrettyMIDI(initial_tempo=bpm * time_sig.quarters_per_beat, resolution=480)
    score.time_signature_changes.append(
        pretty_midi.TimeSignature(time_sig.numerator, time_sig.denominator, 0.0))
    score.key_signature_changes.append(
        pretty_midi.KeySignature(tonic + (12 if mode == "minor" else 0), 0.0))
    writers = {"drums": parts.drums, "bass": parts.bass, "harmony": parts.harmony,
               "lead": parts.lead}
    for role in ROLES:
        for k, name in enumerate(cast[role]):
            inst = INSTRUMENTS[name]
            program = (style.kits[0] if kit is None else kit) if inst.is_drum else inst.program
            track = pretty_midi.Instrument(program=program, is_drum=inst.is_drum, name=name)
            writers[role](song, track, inst, k)
            _finish(track, song, role, k, inst)
            score.instruments.append(track)

    facts = {
        "genre": genre, "tempo": bpm, "key": key_name(tonic, mode), "tonic": tonic, "mode": mode,
        "time_signature": meter, "feel": style.feel,
        "instruments": {role: list(cast[role]) for role in ROLES if cast[role]},
        "form": _form_summary(bars, style.intro, loop), "bars": n_bars, "style_version": style_version,
    }
    return score, facts


def compose_continuation(genre: str, *, tempo: float | None, parent_length: float, length: float,
                         instruments: tuple[str, ...] = (), seed: int, kit: int | None = None,
                         key: Key | None = None, meter: str = METER_DEFAULT,
                         style_version: int = STYLE_VERSION) -> tuple[pretty_midi.PrettyMIDI, dict]:
    """The score of compose(..., length=parent_length) continued to `length` seconds.

    Every note of the parent that starts before its final chord is kept as it was; from that bar
    line (facts["seam"]) the form goes on with the section after the parent's last one, in the
    same key, tempo, meter, instruments and progressions, and ends with the style's cadence and
    final chord at the new length. The new bars are written with their own seeded draws, so the
    same extension of the same track is the same music."""
    parent, facts = compose(genre, tempo=tempo, length=parent_length, instruments=instruments, seed=seed,
                            kit=kit, key=key, meter=meter, style_version=style_version)
    style, time_sig = style_of(genre, style_version), METERS[meter]
    bpm, tonic, mode = facts["tempo"], facts["tonic"], facts["mode"]
    bar_len = time_sig.bar_seconds(bpm)
    seam = facts["bars"] * bar_len
    rest = length - seam
    n_bars = max(0, int((rest - min(RING_MIN, 0.3 * rest)) / bar_len))
    # the parent's progressions are its rng's first draws after tempo and key: replay them
    replay = random.Random(f"compose:{genre}:{seed}")
    if not tempo:
        replay.randint(*style.tempo)
    replay.choice(style.tonics), replay.choice(style.modes)
    drawn = replay.getstate()
    parent_bars = plan(style, tonic, mode, facts["bars"], bar_len, replay, time_sig)
    replay.setstate(drawn)
    bars = plan(style, tonic, mode, n_bars, bar_len, replay, time_sig, after=parent_bars)
    rng = random.Random(f"compose:{genre}:{seed}:after:{facts['bars']}")
    cast = cast_roles(style, tuple(instruments))
    song = Song(style, bpm, tonic, mode, float(rest), bars, n_bars * bar_len,
                parse_chord(style.final[mode], tonic), rng, cast, time_sig, style.patterns(meter))
    writers = {"drums": parts.drums, "bass": parts.bass, "harmony": parts.harmony, "lead": parts.lead}
    kept = iter(parent.instruments)
    for role in ROLES:
        for k, name in enumerate(cast[role]):
            inst = INSTRUMENTS[name]
            old = next(kept)
            new = pretty_midi.Instrument(program=old.program, is_drum=old.is_drum, name=name)
            writers[role](song, new, inst, k)
            _finish(new, song, role, k, inst)
            old.notes = [n for n in old.notes if n.start < seam - 1e-6]
            for note in new.notes:
                old.notes.append(pretty_midi.Note(note.velocity, note.pitch, note.start + seam, note.end + seam))
            old.notes.sort(key=lambda n: (n.start, n.pitch))
    facts = {**facts, "bars": facts["bars"] + n_bars,
             "form": facts["form"][:-2] + _form_summary(bars, style.intro),
             "continued": {"from_length": parent_length, "from_bars": facts["bars"], "seam": round(seam, 6)}}
    return parent, facts


def _finish(track: pretty_midi.Instrument, song: Song, role: str, k: int, inst) -> None:
    """Mix controllers at time 0; notes clamped to the instrument's range and the length."""
    mix = song.style.mix[role]
    db = mix.level + TRIM_DB.get(inst.name, 0.0) - 4.0 * k
    if inst.is_drum:
        db += KIT_TRIM_DB.get(track.program, 0.0)
    level = min(127, round(127 * 10 ** (db / 60)))
    pan = mix.pan if k == 0 else 128 - mix.pan
    for cc, value in ((7, level), (10, pan), (91, mix.reverb), (93, mix.chorus)):
        track.control_changes.append(pretty_midi.ControlChange(cc, int(value), 0.0))
    for note in track.notes:
        if not inst.is_drum:
            while note.pitch < inst.low:
                note.pitch += 12
            while note.pitch > inst.high:
                note.pitch -= 12
        if song.loop:  # a note pushed over either end plays at the other; a long one rings over it
            shift = song.length if note.start < 0 else -song.length if note.start >= song.length else 0.0
            note.start, note.end = max(0.0, note.start + shift), note.end + shift
            note.end = max(note.end, note.start + 0.01)
            continue
        note.start = min(max(0.0, note.start), song.length - 0.01)
        note.end = min(max(note.end, note.start + 0.01), song.length)
    track.notes.sort(key=lambda n: (n.start, n.pitch))


def _form_summary(bars: list[Bar], intro: Section | None, loop: bool = False) -> list[str]:
    """['intro x4', 'A x4', 'B x4', ..., 'cadence', 'ending'] (a loop: 'cadence', 'loop')"""
    out: list[str] = []
    for bar in bars[:-1]:
        if bar.section_start or not out:
            label = "intro" if bar.section is intro else bar.section.name
            out.append(f"{label} x1")
        else:
            name, n = out[-1].rsplit(" x", 1)
            out[-1] = f"{name} x{int(n) + 1}"
    if bars:
        out.append("cadence")
    out.append("loop" if loop else "ending")
    return out


def perform(genre: str, *, tempo: float | None, length: float, instruments: tuple[str, ...] = (),
            seed: int, kit: int | None = None, key: Key | None = None, meter: str = METER_DEFAULT,
            loop: bool = False, sr: int = SAMPLE_RATE, soundfont=None, on_composed=None,
            stereo: bool = False, style_version: int = STYLE_VERSION
            ) -> tuple[np.ndarray, pretty_midi.PrettyMIDI, dict]:
    """Compose and render: exactly round(length * sr) float32 samples, a short fade at the end.

    loop: `length` is taken to the nearest whole number of bars (Meter.loop_bars, at the tempo
    the song resolves to) and the audio is the loop's steady state: what rings past its end (notes,
    release, the reverb tail) is added to its start, and nothing fades.
    stereo: shape (round(length * sr), 2), each part at its pan (midi.render_parts); else mono (n,)."""
    y, _, score, facts = perform_parts(genre, tempo=tempo, length=length, instruments=instruments,
                                       seed=seed, kit=kit, key=key, meter=meter, loop=loop, sr=sr,
                                       soundfont=soundfont, on_composed=on_composed, stems=False,
                                       stereo=stereo, style_version=style_version)
    return y, score, facts


def perform_parts(genre: str, *, tempo: float | None, length: float, instruments: tuple[str, ...] = (),
                  seed: int, kit: int | None = None, key: Key | None = None, meter: str = METER_DEFAULT,
                  loop: bool = False, sr: int = SAMPLE_RATE, soundfont=None, on_composed=None,
                  stems: bool = True, extend_from: float | None = None, stereo: bool = False,
                  style_version: int = STYLE_VERSION
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], pretty_midi.PrettyMIDI, dict]:
    """perform(), and the mix's stems: {role: audio} for the roles the arrangement used, each made
    exactly as the mix is (same length, fade or wrap, and channels), summing to it. stems=False: {}.
    extend_from: the length of the track this one continues (compose_continuation)."""
    from ..midi import REVERB_SECONDS, render_parts
    if loop:
        bpm = float(tempo) if tempo else _seeded_tempo(genre, seed, style_version)
        time_sig = METERS[meter]
        length = time_sig.loop_bars(length, bpm) * time_sig.bar_seconds(bpm)
        tempo = bpm
    if extend_from is None:
        score, facts = compose(genre, tempo=tempo, length=length, instruments=instruments, seed=seed,
                               kit=kit, key=key, meter=meter, loop=loop, style_version=style_version)
    else:
        score, facts = compose_continuation(genre, tempo=tempo, parent_length=extend_from, length=length,
                                            instruments=instruments, seed=seed, kit=kit, key=key, meter=meter,
                                            style_version=style_version)
    if on_composed is not None:
        on_composed()
    n = int(round(length * sr))
    role = (lambda inst: INSTRUMENTS[inst.name].role) if stems else None
    if loop:
        y, parts = render_parts(score, sr, soundfont=soundfont, tail=REVERB_SECONDS + 0.5, group=role,
                                stereo=stereo)
        return wrap(y, n), {r: wrap(p, n) for r, p in parts.items()}, score, facts
    y, parts = render_parts(score, sr, soundfont=soundfont, group=role, stereo=stereo)
    fade = min(int(0.2 * sr), n // 4)
    ramp = np.linspace(1.0, 0.0, fade, dtype=np.float32) ** 2
    if stereo:
        ramp = ramp[:, None]

    def finish(y: np.ndarray) -> np.ndarray:
        y = np.pad(y[:n], [(0, max(0, n - len(y)))] + [(0, 0)] * (y.ndim - 1)).astype(np.float32)
        if fade > 0:
            y[-fade:] *= ramp
        return y
    return finish(y), {r: finish(p) for r, p in parts.items()}, score, facts


def _seeded_tempo(genre: str, seed: int, style_version: int = STYLE_VERSION) -> float:
    """The tempo compose() draws for a seed when none is asked for (its first draw)."""
    return float(random.Random(f"compose:{genre}:{seed}").randint(*style_of(genre, style_version).tempo))


def wrap(y: np.ndarray, n: int) -> np.ndarray:
    """A loop of n samples from audio that rings on past n: everything after n is added back from
    the start (again, if it is longer than the loop), so the loop played end to end is continuous.
    Mono (n,) or stereo (n, 2)."""
    out = np.zeros((n,) + y.shape[1:], dtype=np.float32)
    for at in range(0, len(y), n):
        chunk = y[at:at + n]
        out[:len(chunk)] += chunk
    return out
