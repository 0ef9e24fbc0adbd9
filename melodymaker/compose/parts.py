"""The part writers: drums, bass, harmony and lead of a planned song, written as MIDI notes."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pretty_midi

from ..options import Instrument
from .theory import Chord, nearest, scale_notes, voice_lead, walking_line

if TYPE_CHECKING:
    from .composer import Bar, Song

DRUM_NOTES = {"kick": 36, "snare": 38, "rim": 37, "clap": 39, "hat": 42, "pedal": 44,
              "open": 46, "ride": 51, "crash": 49, "tom_hi": 50, "tom_mid": 47, "tom_lo": 45,
              "floor": 43, "tamb": 54}
VELOCITY = {"X": 118, "x": 96, "o": 72, "g": 44}
TIMEKEEPERS = ("hat", "ride", "pedal", "open", "tamb")


def _add(song: Song, track: pretty_midi.Instrument, pitch: int, velocity: float,
         start: float, end: float, *, humanize: bool = True) -> None:
    if humanize and song.style.humanize_ms:
        h = song.style.humanize_ms / 1000.0
        shift = max(-2 * h, min(2 * h, song.rng.gauss(0.0, h)))
        start, end = start + shift, end + shift
    velocity = velocity + song.rng.uniform(-6, 6)
    if not song.loop:  # (a loop's notes pushed over either end are wrapped round: composer._finish)
        start = max(0.0, start)
        if start >= song.length - 0.02:
            return
    track.notes.append(pretty_midi.Note(int(max(1, min(127, round(velocity)))), int(pitch),
                                        start, max(end, start + 0.03)))


def _events(pattern: str) -> list[tuple[int, str, int]]:
    """(step, symbol, length in steps) for each onset of a 16-step pattern; '-' holds."""
    out = []
    for step, ch in enumerate(pattern):
        if ch in ".-":
            continue
        n = 1
        while step + n < len(pattern) and pattern[step + n] == "-":
            n += 1
        out.append((step, ch, n))
    return out


def _range(inst: Instrument, low: int, high: int) -> tuple[int, int]:
    """The style's register moved inside the instrument's range (at least 15 semitones wide)."""
    lo, hi = max(low, inst.low), min(high, inst.high)
    if hi - lo < 15:
        lo, hi = max(inst.low, min(low, inst.high - 15)), min(inst.high, max(high, inst.low + 15))
    return lo, hi


def drums(song: Song, track, inst: Instrument, k: int) -> None:
    style, rng = song.style, song.rng
    grooves, steps = song.patterns.grooves, song.steps
    half = steps // 2
    for bar in song.bars:
        groove = dict(grooves[min(bar.section.groove, len(grooves) - 1)])
        if bar.fill:
            fill = rng.choice(song.patterns.fills)
            merged = {p: pat[:half] + (pat[half:] if p in TIMEKEEPERS else "." * half)
                      for p, pat in groove.items()}
            for p, pat in fill.items():
                merged[p] = merged.get(p, "." * steps)[:half] + pat.ljust(half, ".")
            groove = merged
        elif "snare" in groove and style.genre not in ("metal", "classical") and rng.random() < 0.3:
            spots = [s for s in range(1, steps, 2) if groove["snare"][s] == "."]
            s = rng.choice(spots) if spots else None
            if s is not None:
                groove["snare"] = groove["snare"][:s] + "g" + groove["snare"][s + 1:]
        if bar.section_start and (bar.index > 0 or song.loop):
            groove["crash"] = "x" + groove.get("crash", "." * steps)[1:]
        energy = bar.section.energy
        for piece, pattern in groove.items():
            if piece == "hat" and "crash" in groove and groove["crash"][0] != ".":
                pattern = "." + pattern[1:]
            for step, ch in enumerate(pattern):
                if ch != ".":
                    t = song.time(bar, step)
                    _add(song, track, DRUM_NOTES[piece], VELOCITY[ch] * energy, t, t + 0.1)
    if song.bars and not song.loop:  # the final hit
        for piece in ("crash", "kick"):
            _add(song, track, DRUM_NOTES[piece], 110, song.ending, song.ending + 0.5,
                 humanize=False)


def _bass_note(symbol: str, chord: Chord, root: int, next_root: int, lo: int, hi: int) -> int:
    intervals = {"R": 0, "3": chord.third, "5": chord.fifth, "6": 9, "7": chord.seventh,
                 "b": 10, "8": 12, "2": 14, "4": 5}
    if symbol == "a":
        target = nearest(next_root, root, lo, hi)
        return target - 1 if target > root or target - 1 < lo else target + 1
    n = root + intervals[symbol]
    return n if n <= hi else n - 12


def bass(song: Song, track, inst: Instrument, k: int) -> None:
    style, rng = song.style, song.rng
    lo, hi = _range(inst, 28, 60)
    center = max(lo + 2, min(style.bass_center + 12 * k, hi - 12))
    prev = center
    for bar in song.bars:
        lines = song.patterns.bass
        pattern = lines[min(bar.section.bass, len(lines) - 1)]
        vel = 98 * bar.section.energy - 10 * k
        if pattern == "W":
            spans = [(b, c) for b, c in bar.chords] + [(song.steps / 4, None)]
            for (beat, chord), (end, _) in zip(spans, spans[1:]):
                line = walking_line(chord, song.next_root(bar, beat), prev, lo, min(hi, 55),
                                    int(end - beat), rng.choice)
                for j, pitch in enumerate(line):
                    t = song.time(bar, 4 * (beat + j))
                    _add(song, track, pitch, vel - (0 if j == 0 else 8), t, t + song.beat * 0.92)
                prev = line[-1]
            continue
        for step, symbol, n in _events(pattern):
            chord = bar.chord_at(step / 4)
            root = nearest(chord.root, center, lo, hi - 7)
            pitch = _bass_note(symbol, chord, root, song.next_root(bar, step / 4), lo, hi)
            start, end = song.time(bar, step), song.time(bar, step + n)
            _add(song, track, pitch, vel - (0 if step % 4 == 0 else 6),
                 start, start + 0.92 * (end - start))
    if not song.loop:  # the final note
        root = nearest(song.final.root, center, lo, hi)
        _add(song, track, root, 92, song.ending, song.length, humanize=False)


def harmony(song: Song, track, inst: Instrument, k: int) -> None:
    style, rng = song.style, song.rng
    low, high = style.comp_register
    lo, hi = _range(inst, low + 7 * k, high + 7 * k)
    center = (lo + hi) // 2
    voicing = None
    strum = style.strum_ms / 1000.0
    comp, by_instrument = song.patterns.comp, song.patterns.comp_by_instrument
    for bar in song.bars:
        if k > 0:
            pattern, legato = song.patterns.pad, 1.0
        elif inst.name in by_instrument:
            pattern, legato = by_instrument[inst.name], 1.0
        elif inst.name in style.comp_by_instrument:  # a 4/4 part this meter has none for: held chords
            pattern, legato = song.patterns.pad, 1.0
        elif style.comp_random:
            pattern, legato = rng.choice(comp), style.comp_legato
        else:
            pattern, legato = comp[min(bar.section.comp, len(comp) - 1)], style.comp_legato
        vel = (84 if k == 0 else 62) * bar.section.energy
        for step, symbol, n in _events(pattern):
            chord = bar.chord_at(step / 4)
            voicing = voice_lead(voicing, chord, style.comp_voices, lo, hi, center)
            start, end = song.time(bar, step), song.time(bar, step + n)
            end = start + legato * (end - start)
            if symbol.isdigit():
                _add(song, track, voicing[int(symbol) % len(voicing)], vel - 6, start, end)
                continue
            v = VELOCITY.get(symbol, 96) / 96 * vel
            for j, pitch in enumerate(voicing):
                _add(song, track, pitch, v, start + j * strum, end, humanize=j == 0)
    if song.loop:
        return
    final = voice_lead(voicing, song.final, max(3, style.comp_voices), lo, hi, center)
    for pitch in final:
        _add(song, track, pitch, 78 if k == 0 else 58, song.ending, song.length, humanize=False)


SHAPES = {"arch": lambda u: math.sin(math.pi * u) - 0.3, "descending": lambda u: 0.8 - 1.4 * u,
          "ascending": lambda u: 1.2 * u - 0.5, "wave": lambda u: 0.7 * math.sin(2 * math.pi * u)}


def _rhythm(song: Song, steps: int, play: int) -> list[tuple[int, int]]:
    """(step, length) onsets on the melody grid within the first `play` steps of a phrase."""
    mel, rng = song.style.melody, song.rng
    onsets = [0]
    for s in range(mel.unit, play, mel.unit):
        p = mel.density * (1.3 if s % song.pulse == 0 else 0.75)
        if rng.random() < p:
            onsets.append(s)
    out = []
    for a, b in zip(onsets, onsets[1:] + [play]):
        out.append((a, min(b - a, 8)))
    last_step, _ = out[-1]
    out[-1] = (last_step, max(2, min(steps - last_step, play - last_step + 4)))
    return out


def _pitch(song: Song, pool: list[int], prev: int, target: float, chord: Chord,
           strong: bool, last: bool, resolve: bool) -> int:
    mel, rng = song.style.melody, song.rng
    tones = [n for n in pool if n % 12 in chord.pitch_classes] or pool
    if last:
        goal = [n for n in tones if n % 12 == chord.root] if resolve else tones
        return min(goal or tones, key=lambda n: abs(n - prev))
    if strong:
        aim = prev + (2 if target > prev else -2)
        moving = [n for n in tones if n != prev] if rng.random() > 0.15 else tones
        return min(moving or tones, key=lambda n: (abs(n - aim), n))
    i = min(range(len(pool)), key=lambda j: abs(pool[j] - prev))
    direction = 1 if target > prev else -1
    if rng.random() < 0.3:
        direction = -direction
    step = rng.choice((3, 4)) if rng.random() < mel.leap else rng.choice((1, 1, 2))
    n = pool[max(0, min(len(pool) - 1, i + direction * step))]
    if mel.chromatic and rng.random() < mel.chromatic:
        n += rng.choice((-1, 1))
    return n


def lead(song: Song, track, inst: Instrument, k: int) -> None:
    rng, mel = song.rng, song.style.melody
    lo, hi = inst.low, inst.high
    center = max(lo + 7, min(mel.register, hi - 9))
    pool = scale_notes(song.tonic, mel.scale[song.mode], max(lo, center - 10), min(hi, center + 12))
    motifs: dict[str, list] = {}
    phrases: list[list[Bar]] = []
    for bar in song.bars:
        if not bar.section.lead:
            continue
        if not phrases or bar.section_start or len(phrases[-1]) == mel.phrase_bars \
                or phrases[-1][-1].index != bar.index - 1:
            phrases.append([])
        phrases[-1].append(bar)
    prev = center
    for p, phrase in enumerate(phrases):
        # two leads answer each other; each plays its own phrases only
        if k != p % len(song.cast["lead"]):
            continue
        steps = song.steps * len(phrase)
        play = max(mel.unit, int(steps * (1 - mel.rest)) // mel.unit * mel.unit)
        key = f"{phrase[0].section.name}:{p % 2}:{len(phrase)}"
        if key in motifs and rng.random() < 0.7:
            rhythm = motifs[key]
        else:
            rhythm = motifs[key] = _rhythm(song, steps, play)
        resolve = p % 2 == 1 or phrase[-1].index >= len(song.bars) - 2
        for i, (step, n) in enumerate(rhythm):
            bar = phrase[step // song.steps]
            chord = bar.chord_at((step % song.steps) / 4)
            target = center + 6 * SHAPES[mel.shape](step / steps)
            pitch = _pitch(song, pool, prev, target, chord, step % song.pulse == 0,
                           i == len(rhythm) - 1, resolve)
            start = _phrase_time(song, phrase, step)
            end = start + mel.legato * max(0.05, _phrase_time(song, phrase, step + n) - start)
            vel = 90 * bar.section.energy + (8 if step % song.pulse == 0 else 0)
            _add(song, track, pitch, vel, start, end)
            if mel.bends and n >= 4 and rng.random() < 0.3:
                _bend(track, start, end)
            prev = pitch
    if k == 0 and song.length - song.ending > 0.2 and not song.loop:
        tonic = min((n for n in pool if n % 12 == song.final.root), key=lambda n: abs(n - prev),
                    default=center)
        _add(song, track, tonic, 84, song.ending, song.length, humanize=False)


def _phrase_time(song: Song, phrase: list[Bar], step: int) -> float:
    i = min(step // song.steps, len(phrase) - 1)
    return song.time(phrase[i], step - song.steps * i)


def _bend(track, start: float, end: float) -> None:
    """A blues bend: start a semitone flat and push up to pitch."""
    for j in range(5):
        track.pitch_bends.append(pretty_midi.PitchBend(int(-4096 * (1 - j / 4)), start + j * 0.03))
    track.pitch_bends.append(pretty_midi.PitchBend(0, end))
