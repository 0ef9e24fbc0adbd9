"""Music theory for the composer: keys, scales, chord symbols, voicings and voice leading."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..keys import Key

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "bebop dominant": (0, 2, 4, 5, 7, 9, 10, 11),
}

# chord qualities as intervals above the root
QUALITIES = {
    "": (0, 4, 7), "m": (0, 3, 7), "5": (0, 7, 12), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "sus4": (0, 5, 7), "sus2": (0, 2, 7), "6": (0, 4, 7, 9), "m6": (0, 3, 7, 9),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "m7": (0, 3, 7, 10), "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9), "9": (0, 4, 7, 10, 14), "m9": (0, 3, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14), "13": (0, 4, 10, 14, 21), "7#9": (0, 4, 7, 10, 15),
    "add9": (0, 4, 7, 14), "m11": (0, 3, 7, 10, 14, 17),
}

_DEGREES = {"I": 0, "II": 2, "III": 4, "IV": 5, "V": 7, "VI": 9, "VII": 11}
_ROMAN = re.compile(r"^([b#]?)(VII|VI|V|IV|III|II|I|vii|vi|v|iv|iii|ii|i)(.*)$")


@dataclass(frozen=True)
class Chord:
    """A chord in a key: root pitch class (0-11, absolute) and intervals above it."""
    symbol: str
    root: int
    intervals: tuple[int, ...]

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple(sorted({(self.root + i) % 12 for i in self.intervals}))

    @property
    def third(self) -> int:
        return next((i for i in self.intervals if i in (3, 4)), 7 if 7 in self.intervals else 0)

    @property
    def fifth(self) -> int:
        return next((i for i in self.intervals if i in (6, 7, 8)), 7)

    @property
    def seventh(self) -> int:
        return next((i for i in self.intervals if i in (9, 10, 11)), 10)

    @property
    def is_power(self) -> bool:
        return self.intervals == QUALITIES["5"]


def parse_chord(symbol: str, tonic: int) -> Chord:
    """A Roman-numeral chord relative to the tonic's major scale: 'ii7', 'bVII5', 'V13'.

    Lower case means a minor chord ('vi' = minor triad, 'ii7' = m7, 'ii9' = m9);
    an explicit quality suffix wins ('Imaj7', 'iim7b5', 'viidim').
    """
    m = _ROMAN.match(symbol)
    if not m:
        raise ValueError(f"bad chord symbol {symbol!r}")
    accidental, numeral, suffix = m.groups()
    root = (tonic + _DEGREES[numeral.upper()] + {"b": -1, "#": 1, "": 0}[accidental]) % 12
    minor = numeral.islower()
    if minor and suffix in ("", "7", "9", "6", "11"):
        suffix = "m" + suffix
    if suffix not in QUALITIES:
        raise ValueError(f"unknown chord quality {suffix!r} in {symbol!r}")
    return Chord(symbol, root, QUALITIES[suffix])


def key_name(tonic: int, mode: str) -> str:
    """'A minor', 'F# major': as the server names keys (options.KEY_TONICS)."""
    return Key(tonic, "minor" if mode == "minor" else "major").name


def scale_notes(tonic: int, scale: str, low: int, high: int) -> list[int]:
    """All MIDI notes of a scale from low to high inclusive."""
    pcs = {(tonic + i) % 12 for i in SCALES[scale]}
    return [n for n in range(low, high + 1) if n % 12 in pcs]


def nearest(pitch_class: int, target: int, low: int = 0, high: int = 127) -> int:
    """The note of a pitch class closest to target, kept inside [low, high]."""
    n = target + ((pitch_class - target + 6) % 12) - 6
    while n < low:
        n += 12
    while n > high:
        n -= 12
    return n


def clamp_octave(note: int, low: int, high: int) -> int:
    """Move a note by octaves into [low, high] (or as close as the range allows)."""
    while note < low and note + 12 <= 127:
        note += 12
    while note > high and note - 12 >= 0:
        note -= 12
    return note


def voicing_candidates(chord: Chord, n_voices: int, low: int, high: int) -> list[tuple[int, ...]]:
    """Close and open voicings of the chord's tones that fit inside [low, high]."""
    if chord.is_power:
        roots = [r for r in range(low, high - 11) if r % 12 == chord.root]
        roots = roots or [clamp_octave(chord.root + 48, low, max(low, high - 12))]
        return [(r, r + 7, r + 12) for r in roots]
    tones = list(dict.fromkeys((chord.root + i) % 12 for i in chord.intervals))
    if len(tones) > n_voices:  # drop the fifth first, then the root (rootless jazz voicing)
        for drop in ((chord.root + chord.fifth) % 12, chord.root):
            if len(tones) > n_voices and drop in tones:
                tones.remove(drop)
    while len(tones) < n_voices:
        tones.append(tones[len(tones) % len(tones) if tones else 0])
    out = []
    for bottom in range(low, low + 12):
        if bottom % 12 not in tones:
            continue
        order = tones[tones.index(bottom % 12):] + tones[:tones.index(bottom % 12)]
        for spread in (0, 1):
            notes, prev = [], bottom - 1
            for k, pc in enumerate(order):
                n = prev + 1 + (pc - prev - 1) % 12
                if spread and k == 1:  # open position: lift the second voice an octave
                    n += 12
                notes.append(n)
                prev = n
            for shift in range(0, 48, 12):
                v = tuple(sorted(x + shift for x in notes))
                if v[0] >= low and v[-1] <= high:
                    out.append(v)
    return out or [tuple(clamp_octave(chord.root + i + 48, low, high) for i in chord.intervals)]


def voice_lead(previous: tuple[int, ...] | None, chord: Chord, n_voices: int,
               low: int, high: int, center: int) -> tuple[int, ...]:
    """The voicing of `chord` that moves least from `previous` (or sits nearest `center`)."""
    candidates = voicing_candidates(chord, n_voices, low, high)

    def cost(v: tuple[int, ...]) -> float:
        mid = sum(v) / len(v)
        if previous is None or len(previous) != len(v):
            return abs(mid - center)
        # total voice movement, plus a pull back towards the register's centre
        return sum(abs(a - b) for a, b in zip(previous, v)) + 0.3 * abs(mid - center)

    return min(candidates, key=cost)


def walking_line(chord: Chord, next_root: int, start: int, low: int, high: int,
                 beats: int, choice) -> list[int]:
    """A walking bass bar: root on one, chord and scale tones, a chromatic approach at the end."""
    line = [nearest(chord.root, start, low, high)]
    target = nearest(next_root, line[0], low, high)
    tones = [chord.third, chord.fifth, chord.seventh, 12, 2, 9]
    for beat in range(1, beats):
        if beat == beats - 1:
            line.append(clamp_octave(target + choice((-1, 1, -2 if target > low + 2 else 1)),
                                     low, high))
        else:
            up = target >= line[-1]
            options = [nearest((chord.root + i) % 12, line[-1] + (3 if up else -3), low, high)
                       for i in tones]
            options = [n for n in options if n != line[-1]] or options
            line.append(choice(options[:3]))
    return line

