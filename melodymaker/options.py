"""The vocabulary of MelodyMaker: genres, instruments, keys, meters, tempo and length presets, limits.

One place for each of these facts; everything else imports them. The modes are listed in
melodymaker/engines/__init__.py (the registry) and the output formats in melodymaker/formats.py.
"""
from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 22050
"""Every engine, the library, the judges and the models work at this rate (GTZAN's)."""
STUDIO_SAMPLE_RATE = 44100
"""The rate of studio output (CD's)."""


@dataclass(frozen=True)
class Quality:
    """An output format a request may ask for (its `quality` field)."""
    name: str
    label: str             # what the page shows: "44.1 kHz stereo"
    sample_rate: int
    channels: int
    description: str


QUALITIES = {q.name: q for q in (
    Quality("standard", "22.05 kHz mono", SAMPLE_RATE, 1,
            "22050 Hz mono, GTZAN's format: what every mode makes, the library holds and the models learn"),
    Quality("studio", "44.1 kHz stereo", STUDIO_SAMPLE_RATE, 2,
            "44100 Hz stereo: compose renders a true stereo mix (each part at its style's pan, with its "
            "reverb send in a stereo room); the other modes are upsampled from their 22050 Hz mono and "
            "centred (the same signal in both channels, at -3 dB each, as a centred pan pot sends it)"),
)}
QUALITY_DEFAULT = "standard"
STEREO_NATIVE = "true stereo"
STEREO_CENTRED = "upsampled, centred"
"""What studio quality means for a mode: it renders stereo itself, or its mono is upsampled and centred."""

GENRES = ("blues", "classical", "country", "disco", "hiphop",
          "jazz", "metal", "pop", "reggae", "rock")

GENRE_LABELS = {"blues": "Blues", "classical": "Classical", "country": "Country",
                "disco": "Disco", "hiphop": "HipHop", "jazz": "Jazz", "metal": "Metal",
                "pop": "Pop", "reggae": "Reggae", "rock": "Rock"}
"""Display names, exactly as the original MelodyMaker page sent them."""

ROLES = ("drums", "bass", "harmony", "lead")


@dataclass(frozen=True)
class Instrument:
    """One entry of the instrument catalogue."""
    name: str          # the id a request uses, e.g. "electric guitar"
    label: str         # what the page shows
    program: int       # General MIDI program, 0-127 (ignored for drums)
    role: str          # one of ROLES
    low: int = 0       # playable MIDI note range, inclusive
    high: int = 127
    is_drum: bool = False


INSTRUMENTS = {i.name: i for i in (
    Instrument("piano", "Piano", 0, "harmony", 21, 108),
    Instrument("electric piano", "Electric Piano", 4, "harmony", 28, 103),
    Instrument("organ", "Organ", 16, "harmony", 36, 96),
    Instrument("guitar", "Guitar", 25, "harmony", 40, 84),
    Instrument("electric guitar", "Electric Guitar", 27, "harmony", 40, 86),
    Instrument("distorted guitar", "Distorted Guitar", 30, "harmony", 40, 86),
    Instrument("strings", "Strings", 48, "harmony", 28, 96),
    Instrument("synth pad", "Synth Pad", 89, "harmony", 36, 96),
    Instrument("bass", "Bass", 33, "bass", 28, 60),
    Instrument("upright bass", "Upright Bass", 32, "bass", 28, 60),
    Instrument("synth bass", "Synth Bass", 38, "bass", 28, 60),
    Instrument("drums", "Drums", 0, "drums", 35, 81, is_drum=True),
    Instrument("saxophone", "Saxophone", 65, "lead", 49, 81),
    Instrument("trumpet", "Trumpet", 56, "lead", 54, 84),
    Instrument("flute", "Flute", 73, "lead", 60, 96),
    Instrument("violin", "Violin", 40, "lead", 55, 100),
    Instrument("clarinet", "Clarinet", 71, "lead", 50, 91),
    Instrument("synth", "Synth Lead", 81, "lead", 48, 96),
    # added for the composer's genre styles (issue 3)
    Instrument("lead guitar", "Lead Guitar", 29, "lead", 52, 88),
    Instrument("harmonica", "Harmonica", 22, "lead", 60, 93),
    Instrument("vibraphone", "Vibraphone", 11, "lead", 53, 89),
    Instrument("cello", "Cello", 42, "bass", 36, 72),
    Instrument("brass", "Brass Section", 61, "harmony", 41, 82),
    Instrument("banjo", "Banjo", 105, "harmony", 48, 84),
)}

KEY_AUTO = "auto"
"""The default key: the engine's own choice (the composer's genre style, whatever a model makes)."""
KEY_MODES = ("major", "minor")
KEY_TONICS = {
    "major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
    "minor": ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"),
}
"""Each key's tonic by pitch class (C = 0), spelled as its key signature has fewer accidentals;
requests may spell it either way (melodymaker.keys parses them)."""
KEYS = tuple(f"{tonic} {mode}" for mode in KEY_MODES for tonic in KEY_TONICS[mode])
"""The 24 keys a request may ask for, as the server names them ('C major' ... 'B minor')."""


@dataclass(frozen=True)
class Meter:
    """A time signature a request may ask for, and what its tempo counts."""
    name: str              # "6/8", as requests and the MIDI file say it
    numerator: int
    denominator: int
    beats: int             # tempo beats per bar: 4 in 4/4, 3 in 3/4, 2 (dotted quarters) in 6/8
    beat: str              # what one tempo beat is, in words
    quarters_per_beat: float  # 1 for a quarter-note beat, 1.5 for a dotted quarter

    @property
    def steps(self) -> int:
        """Sixteenth notes per bar: the length of the composer's patterns in this meter."""
        return int(round(4 * self.beats * self.quarters_per_beat))

    def bar_seconds(self, bpm: float) -> float:
        return self.beats * 60.0 / bpm

    def loop_bars(self, length: float, bpm: float) -> int:
        """A loop's length in bars: the whole number nearest to `length` seconds, at least one."""
        return max(1, int(round(length / self.bar_seconds(bpm))))


METERS = {m.name: m for m in (
    Meter("4/4", 4, 4, 4, "quarter note", 1.0),
    Meter("3/4", 3, 4, 3, "quarter note", 1.0),
    Meter("6/8", 6, 8, 2, "dotted quarter note", 1.5),
)}
METER_DEFAULT = "4/4"
"""The tempo (BPM) counts quarter notes in 4/4 and 3/4 and dotted quarters in 6/8."""

LOOP_CROSSFADE = 0.25
"""Seconds of a mode's audio past the loop's end that are crossfaded into its start, when the mode
cannot write a loop itself (capabilities.loop)."""


@dataclass(frozen=True)
class TempoPreset:
    label: str
    low: int
    high: int


TEMPO_PRESETS = (
    TempoPreset("Slow (60-80 BPM)", 60, 80),
    TempoPreset("Medium (90-120 BPM)", 90, 120),
    TempoPreset("Fast (130-160 BPM)", 130, 160),
    TempoPreset("Very Fast (170+ BPM)", 170, 200),
)
TEMPO_MIN, TEMPO_MAX = 40, 240

LENGTH_PRESETS = {
    "Short (15 seconds)": 15,
    "Demo (30 seconds)": 30,
    "Long (1 minute)": 60,
    "Full (3 minutes)": 180,
}
LENGTH_MIN, LENGTH_MAX = 1, 300
LENGTH_DEFAULT = 30

AUDIO_EXTENSIONS = (".au", ".wav", ".mp3", ".flac", ".ogg")
"""What the library indexes (matched case-insensitively)."""

SEED_MAX = 2**31 - 1

CANDIDATES_MIN, CANDIDATES_MAX = 1, 8
"""Best-of-N: how many variations a request may ask for."""
