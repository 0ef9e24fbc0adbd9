"""The ten genre styles as data: grooves, bass lines, harmony, melody, form, instruments, mix."""
# Patterns are one character per sixteenth note of a 4/4 bar (16 characters):
#   drums   'X' accent, 'x' normal, 'o' soft, 'g' ghost, '.' rest
#   bass    'R' chord root, '3' third, '5' fifth, '6' sixth, '7' seventh, 'b' flat seventh,
#           '8' octave, '2' ninth, '4' fourth, 'a' chromatic approach to the next chord's root,
#           'W' (alone) a walking line, '-' hold, '.' rest
#   harmony 'X' 'x' 'o' the whole chord (loud to soft), '0'-'4' one voice of it (arpeggio),
#           '-' hold, '.' rest
# Drum fills are 8 characters and replace the second half of a section's last bar.
# Other meters (Style.meters) have their own patterns, one character per sixteenth of their bar:
# 12 in 3/4 (beats on 0, 4, 8) and in 6/8 (eighths on even steps, dotted-quarter beats on 0 and 6),
# fills of 6. A genre without a meter there does not write it (request.py's 400 names the meters
# it has); Style.meter_note says why.
# Progressions are Roman numerals relative to the tonic's major scale, one string per bar
# ("ii7 V7" splits the bar); see theory.parse_chord.
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..options import GENRES, INSTRUMENTS, KEY_MODES, METER_DEFAULT, METERS, ROLES

PAD = "x-------x-------"


@dataclass(frozen=True)
class Section:
    """A part of the song form: which groove, bass line and comping it uses."""
    name: str
    groove: int = 0
    bass: int = 0
    comp: int = 0
    lead: bool = True
    energy: float = 1.0


@dataclass(frozen=True)
class Melody:
    """How the lead writes its phrases."""
    scale: dict[str, str]              # mode -> scale name in theory.SCALES
    register: int = 72                 # centre note, moved into the instrument's range
    density: float = 0.5               # chance of a note on each grid step
    unit: int = 2                      # grid in sixteenths: 1, 2 (eighths) or 4 (quarters)
    shape: str = "arch"                # arch, descending, ascending, wave
    phrase_bars: int = 2
    rest: float = 0.25                 # silent tail of each phrase, for the answer
    legato: float = 0.9
    leap: float = 0.15                 # chance of a leap instead of a step
    chromatic: float = 0.0             # chance of a chromatic passing note
    bends: bool = False


@dataclass(frozen=True)
class Mix:
    level: float = -6.0                # dB; CC7 = 127 * 10 ** ((level + trim) / 60), see composer
    pan: int = 64                      # CC10
    reverb: int = 40                   # CC91
    chorus: int = 0                    # CC93


@dataclass(frozen=True)
class Bus:
    """The mix bus of a style that wants a produced sound (mastering.bus): a high-shelf lift for
    brightness, then gentle compression."""
    threshold_db: float
    ratio: float
    shelf_db: float = 0.0


@dataclass(frozen=True)
class MeterStyle:
    """A style's patterns in one meter (the Style's own fields are its 4/4)."""
    grooves: tuple[dict[str, str], ...]
    fills: tuple[dict[str, str], ...]
    bass: tuple[str, ...]
    comp: tuple[str, ...]
    comp_by_instrument: dict[str, str] = field(default_factory=dict)
    pad: str = PAD                     # a second harmony instrument's sustained chords


@dataclass(frozen=True)
class Style:
    genre: str
    tempo: tuple[int, int]
    feel: str                          # straight, swing, shuffle, half-time
    swing: float                       # 0.5 straight; 0.67 triplet shuffle
    swing_unit: int                    # swing the 8ths (2) or the 16ths (1)
    humanize_ms: float
    tonics: tuple[int, ...]            # pitch classes the genre likes to play in
    modes: tuple[str, ...]             # 'major' and/or 'minor'
    progressions: dict[str, dict[str, tuple[tuple[str, ...], ...]]]  # mode -> section -> variants
    intro: Section | None              # opens songs of 8 bars or more (at most 4 bars of it)
    form: tuple[Section, ...]          # played in order, then again, until the length is filled
    cadence: dict[str, str]            # mode -> the bar before the final chord
    final: dict[str, str]              # mode -> the final chord, held to the end
    grooves: tuple[dict[str, str], ...]
    fills: tuple[dict[str, str], ...]
    bass: tuple[str, ...]
    comp: tuple[str, ...]
    melody: Melody
    instruments: dict[str, tuple[str, ...]]  # role -> genre-typical choices, the default first
    kits: tuple[int, ...] = (0,)       # GM2 drum kits (program on the drum channel), default first
    comp_voices: int = 4
    comp_register: tuple[int, int] = (52, 76)
    comp_legato: float = 0.9
    comp_random: bool = False          # pick the comping pattern bar by bar (jazz)
    comp_by_instrument: dict[str, str] = field(default_factory=dict)
    strum_ms: float = 0.0
    bass_center: int = 40
    drums_by_default: bool = True
    mix: dict[str, Mix] = field(default_factory=dict)
    meters: dict[str, MeterStyle] = field(default_factory=dict)  # the meters besides 4/4
    meter_note: str = ""               # why a meter is missing, for /api/options
    bus: Bus | None = None             # mix-bus EQ and compression (style version 2 on)

    def patterns(self, meter: str) -> MeterStyle:
        """The grooves, fills, bass lines and comping of one meter; KeyError when it has none."""
        if meter == METER_DEFAULT:
            return MeterStyle(self.grooves, self.fills, self.bass, self.comp, self.comp_by_instrument)
        return self.meters[meter]

    @property
    def meter_names(self) -> tuple[str, ...]:
        return (METER_DEFAULT, *self.meters)


def _prog(**modes):
    return modes


STYLES: dict[str, Style] = {}


def _add(style: Style) -> None:
    STYLES[style.genre] = style


BLUES_12 = ("I7", "IV7", "I7", "I7", "IV7", "IV7", "I7", "I7", "V7", "IV7", "I7", "V7")
_add(Style(
    "blues", tempo=(72, 112), feel="shuffle", swing=0.67, swing_unit=2, humanize_ms=7,
    tonics=(4, 9, 7, 0, 10, 2, 5), modes=("major", "major", "minor"),
    progressions=_prog(
        major={"A": (BLUES_12, ("I7",) * 4 + BLUES_12[4:], BLUES_12[:10] + ("I7 IV7", "I7 V7")),
               "turn": (("V7", "IV7", "I7", "V7"),)},
        minor={"A": (("i7", "iv7", "i7", "i7", "iv7", "iv7", "i7", "i7", "bVI7", "V7", "i7", "V7"),),
               "turn": (("bVI7", "V7", "i7", "V7"),)}),
    intro=Section("turn", lead=False, energy=0.85),
    form=(Section("A"), Section("A", groove=1, comp=1, bass=1, energy=1.05)), cadence={"major": "V7", "minor": "V7"},
    final={"major": "I9", "minor": "i9"},
    grooves=({"kick": "x.......x.......", "snare": "....x.......x...", "hat": "x.o.x.o.x.o.x.o."},
             {"kick": "x.......x.....o.", "snare": "....x..g....x...", "ride": "x.o.x.o.x.o.x.o.",
              "pedal": "....x.......x..."}),
    fills=({"snare": "x.x.x.o.", "tom_mid": "......x.", "kick": "x......."},
           {"snare": "..x.x.xx", "floor": "x......."}),
    bass=("R.3.5.6.8.6.5.3.", "R---3---5---6-a-"),
    comp=("X-.ox-.oX-.ox-.o", "....X-......X-.."),
    comp_voices=4, comp_register=(50, 74), comp_legato=0.8, bass_center=40,
    melody=Melody({"major": "blues", "minor": "blues"}, register=67, density=0.6,
                  shape="descending", phrase_bars=4, rest=0.45, leap=0.2, bends=True),
    kits=(8,),
    instruments={"drums": ("drums",), "bass": ("bass", "upright bass"),
                 "harmony": ("piano", "organ"),
                 "lead": ("harmonica", "saxophone")},
    mix={"drums": Mix(-9, 64, 30), "bass": Mix(-10, 64, 10), "harmony": Mix(-8, 50, 45),
         "lead": Mix(-6, 78, 55)},
    meters={"6/8": MeterStyle(  # the slow blues' 12/8 feel, written as 6/8
        grooves=({"kick": "x.....x.....", "snare": "......x.....", "hat": "x.x.x.x.x.x."},
                 {"kick": "x.....x...o.", "snare": "......x...g.", "ride": "x.x.x.x.x.x.",
                  "pedal": "......x....."}),
        fills=({"snare": "x.x.o.", "tom_mid": "....x."}, {"snare": "..xxxx", "floor": "x....."}),
        bass=("R.3.5.6.5.3.", "R---3-5---6-"),
        comp=("X.o.o.x.o.o.", "......X-...."), pad="x-----x-----")},
    meter_note="no 3/4: a blues waltz is a rarity; its slow triple feel is the 6/8 here",
))

_add(Style(
    "classical", tempo=(66, 112), feel="straight", swing=0.5, swing_unit=2, humanize_ms=6,
    tonics=tuple(range(12)), modes=("major", "major", "minor"),
    progressions=_prog(
        major={"A": (("I", "IV", "V7", "I"), ("I", "vi", "ii", "V7"), ("I", "ii7", "V7", "I")),
               "B": (("IV", "I", "ii", "V"), ("vi", "II7", "V", "V7"), ("ii", "V7", "iii", "vi"))},
        minor={"A": (("i", "iv", "V7", "i"), ("i", "bVI", "iim7b5", "V7")),
               "B": (("iv", "i", "V", "V7"), ("bVI", "iv", "V", "V7"), ("bIII", "bVII", "V", "i"))}),
    intro=None,
    form=(Section("A", energy=0.9), Section("B", comp=1, bass=2), Section("A", comp=2, bass=1)),
    cadence={"major": "V7", "minor": "V7"},
    final={"major": "I", "minor": "i"},
    grooves=({"kick": "x.......x.......", "ride": "x...x...x...x..."},),
    fills=({"tom_lo": "x...x..."},),
    bass=("R-------5-------", "R---------------", "R---5---8---5---"),
    comp=("0.2.1.2.0.2.1.2.", "0.1.2.1.0.1.2.1.", "0-1-2-3-2-1-0-1-"),
    comp_voices=4, comp_register=(48, 74), comp_legato=1.0, bass_center=43,
    comp_by_instrument={"strings": "x---x---x---x---", "synth pad": PAD, "organ": PAD,
                        "brass": "x-------x---x---"},
    drums_by_default=False,
    melody=Melody({"major": "major", "minor": "harmonic minor"}, register=74, density=0.6,
                  unit=2, shape="arch", phrase_bars=4, rest=0.15, legato=1.0, leap=0.12),
    kits=(48,),
    instruments={"drums": ("drums",), "bass": ("cello", "upright bass"),
                 "harmony": ("piano", "strings"),
                 "lead": ("violin", "flute", "clarinet")},
    mix={"drums": Mix(-12, 64, 60), "bass": Mix(-9, 54, 80), "harmony": Mix(-5, 64, 80),
         "lead": Mix(-7, 74, 85)},
    meters={"3/4": MeterStyle(  # waltz and minuet
        grooves=({"kick": "x...........", "ride": "....x...x..."},), fills=({"tom_lo": "x...x."},),
        bass=("R-------....", "R-----------", "R---5---8---"),
        comp=("....x-..x-..", "0.2.1.2.0.2.", "0-1-2-3-2-1-"),
        comp_by_instrument={"strings": "x---x---x---", "synth pad": "x-----------",
                            "organ": "x-----------", "brass": "x-------x---"}, pad="x-----------"),
            "6/8": MeterStyle(  # siciliano and pastorale
        grooves=({"kick": "x...........", "ride": "x.....x....."},), fills=({"tom_lo": "x.x.x."},),
        bass=("R-----5-----", "R-----------", "R---5-8---5-"),
        comp=("0.2.1.0.2.1.", "0.1.2.0.1.2.", "0.1.2.3.2.1."),
        comp_by_instrument={"strings": "x-----x-----", "synth pad": "x-----------",
                            "organ": "x-----------", "brass": "x-----x-----"}, pad="x-----x-----")},
))

_add(Style(
    "country", tempo=(96, 140), feel="straight", swing=0.54, swing_unit=2, humanize_ms=5,
    tonics=(7, 2, 9, 0, 4), modes=("major",),
    progressions=_prog(
        major={"A": (("I", "IV", "I", "V7"), ("I", "I", "IV", "IV", "V7", "V7", "I", "I"),
                     ("I", "V7", "IV", "I")),
               "B": (("IV", "I", "V7", "I"), ("vi", "IV", "V7", "I"), ("IV", "IV", "I", "V7"))},
        # only when a request asks for a minor key: the murder-ballad side of country
        minor={"A": (("i", "iv", "i", "V7"), ("i", "bVII", "bVI", "V7")),
               "B": (("iv", "i", "V7", "i"), ("bVI", "bVII", "i", "V7"))}),
    intro=Section("A", lead=False, energy=0.9),
    form=(Section("A"), Section("B", groove=1, comp=1, bass=1, energy=1.05)),
    cadence={"major": "V7", "minor": "V7"}, final={"major": "I", "minor": "i"},
    grooves=({"kick": "x.......x.......", "snare": "gogoxogogogoxogo", "pedal": "....x.......x..."},
             {"kick": "x.......x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."}),
    fills=({"snare": "xoxoxxxx"}, {"snare": "x.x.", "tom_hi": "....x.", "floor": "......x."}),
    bass=("R-------5-------", "R---5---R---5-a-"),
    comp=("....x.......x...", "x.x.x.x.x.x.x.x."),
    comp_voices=4, comp_register=(50, 74), comp_legato=0.5, strum_ms=12, bass_center=40,
    melody=Melody({"major": "major pentatonic", "minor": "minor pentatonic"}, register=72, density=0.6, shape="arch",
                  phrase_bars=2, rest=0.3),
    kits=(40,),
    instruments={"drums": ("drums",), "bass": ("bass", "upright bass"),
                 "harmony": ("guitar", "banjo"),
                 "lead": ("violin", "harmonica")},
    mix={"drums": Mix(-12, 64, 25), "bass": Mix(-10, 64, 15), "harmony": Mix(-6, 44, 35),
         "lead": Mix(-6, 84, 45)},
    meters={"3/4": MeterStyle(  # the country waltz: boom-chick-chick
        grooves=({"kick": "x...........", "snare": "....x...x...", "pedal": "....x...x..."},
                 {"kick": "x...........", "snare": "....x...x...", "hat": "x.x.x.x.x.x."}),
        fills=({"snare": "xoxoxx"}, {"tom_hi": "x.", "floor": "..x.x."}),
        bass=("R-------....", "R-------5-a-"), comp=("....x...x...", "x.x.x.x.x.x."),
        pad="x-----------"),
            "6/8": MeterStyle(  # the slow country ballad
        grooves=({"kick": "x...........", "snare": "......x.....", "hat": "x.x.x.x.x.x."},
                 {"kick": "x.....x.....", "snare": "......x.....", "ride": "x.x.x.x.x.x."}),
        fills=({"snare": "xoxoxx"}, {"tom_hi": "x.", "floor": "..x.x."}),
        bass=("R-----5-----", "R-----5---a-"), comp=("x.o.o.x.o.o.", "x-----x-----"),
        pad="x-----x-----")},
))

_add(Style(
    "disco", tempo=(112, 128), feel="straight", swing=0.5, swing_unit=1, humanize_ms=2,
    tonics=(9, 4, 2, 7, 0, 5), modes=("minor", "major"),
    progressions=_prog(
        minor={"A": (("i7", "iv7", "i7", "iv7"), ("i7", "bVII", "bVI", "bVII"), ("i9", "iv9", "i9", "V7")),
               "B": (("bVImaj7", "bVII", "i7", "i7"), ("iv7", "bVII9", "bIIImaj7", "bVImaj7"))},
        major={"A": (("Imaj7", "ii7", "iii7", "ii7"), ("ii7", "V7", "Imaj7", "vi7")),
               "B": (("IVmaj7", "iii7", "ii7", "Imaj7"), ("IVmaj7", "V7", "iii7", "vi7"))}),
    intro=Section("A", lead=False, energy=0.9),
    form=(Section("A"), Section("B", groove=1, comp=1, bass=1, energy=1.05)),
    cadence={"minor": "V7", "major": "V7"},
    final={"minor": "i9", "major": "Imaj9"},
    grooves=({"kick": "x...x...x...x...", "clap": "....x.......x...", "hat": "x...x...x...x...",
              "open": "..x...x...x...x."},
             {"kick": "x...x...x...x...", "clap": "....x.......x...", "hat": "xoxoxoxoxoxoxoxo",
              "open": "..x...x...x...x.", "tamb": "....x.......x..."}),
    fills=({"snare": "xoxoxxXX", "kick": "x...x..."}, {"snare": "x.x.xxxx", "kick": "x...x..."}),
    bass=("R.8.R.8.R.8.R.8.", "R.8.R.8.R.8.5.8."),
    comp=("..x...x...x...x.", "x..x..x...x..x.."),
    comp_voices=4, comp_register=(55, 79), comp_legato=0.5, bass_center=38,
    comp_by_instrument={"synth pad": PAD},
    melody=Melody({"minor": "dorian", "major": "major"}, register=74, density=0.55, shape="wave",
                  phrase_bars=2, rest=0.3),
    kits=(0, 24),
    instruments={"drums": ("drums",), "bass": ("bass", "synth bass"),
                 "harmony": ("strings", "electric piano", "brass"),
                 "lead": ("synth", "flute", "trumpet", "violin")},
    mix={"drums": Mix(-11, 64, 25), "bass": Mix(-9, 64, 10), "harmony": Mix(-7, 50, 50, 40),
         "lead": Mix(-7, 78, 50, 30)},
    meter_note="4/4 only: disco is four on the floor",
))

_add(Style(
    "hiphop", tempo=(82, 98), feel="swing", swing=0.58, swing_unit=1, humanize_ms=6,
    tonics=(0, 2, 4, 5, 7, 9, 11), modes=("minor", "minor", "major"),
    progressions=_prog(
        minor={"A": (("i9", "iv9", "i9", "iv9"), ("i7", "bVImaj7", "bIIImaj7", "bVII"),
                     ("i7", "i7", "bVImaj7", "V7")),
               "B": (("bVImaj7", "bVImaj7", "i9", "i9"), ("iv9", "iv9", "i7", "V7"))},
        major={"A": (("Imaj7", "vi9", "ii9", "V13"), ("Imaj9", "IVmaj9", "Imaj9", "IVmaj9")),
               "B": (("ii9", "V13", "iii7", "vi9"),)}),
    intro=Section("A", lead=False, energy=0.9),
    form=(Section("A"), Section("A", bass=1), Section("B", groove=1, comp=1)), cadence={"minor": "V7", "major": "V13"},
    final={"minor": "i9", "major": "Imaj9"},
    grooves=({"kick": "x......xx.x.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x."},
             {"kick": "x.x....x..x..x..", "snare": "....X.......X..g", "hat": "x.xox.x.x.xox...",
              "open": "..............x."}),
    fills=({"kick": "........", "snare": "x...x.xx"}, {"kick": "x.......", "snare": "....X..."}),
    bass=("R-----R-.-R-----", "R-----R-R-..5-.."),
    comp=("x-------.-x-----", "x---------x-----"),
    comp_voices=4, comp_register=(50, 74), comp_legato=0.95, bass_center=36,
    comp_by_instrument={"synth pad": PAD, "strings": PAD},
    melody=Melody({"minor": "minor pentatonic", "major": "major pentatonic"}, register=70,
                  density=0.45, shape="wave", phrase_bars=2, rest=0.4, leap=0.1),
    kits=(25,),
    instruments={"drums": ("drums",), "bass": ("synth bass", "bass"),
                 "harmony": ("electric piano", "synth pad"),
                 "lead": ("flute", "vibraphone", "synth", "saxophone")},
    mix={"drums": Mix(-8, 64, 15), "bass": Mix(-8, 64, 5), "harmony": Mix(-7, 56, 35),
         "lead": Mix(-7, 72, 40)},
    meter_note="4/4 only: a hip-hop beat is a 4/4 backbeat",
))

_add(Style(
    "jazz", tempo=(100, 180), feel="swing", swing=0.64, swing_unit=2, humanize_ms=8,
    tonics=(5, 10, 3, 0, 7, 8, 2), modes=("major", "major", "minor"),
    progressions=_prog(
        major={"A": (("ii9", "V13", "Imaj9", "Imaj9"), ("Imaj7 vi7", "ii7 V7", "iii7 VI7", "ii7 V7"),
                     ("ii7", "V7", "Imaj7", "VI7")),
               "B": (("IVmaj7", "iv7 bVII9", "iii7 VI7", "ii7 V7"), ("iii7", "VI7", "ii7", "V7"),
                     ("Imaj7", "I7", "IVmaj7", "iv7"))},
        minor={"A": (("iim7b5", "V7", "i7", "i7"), ("i7", "iv7", "bVII7", "bIIImaj7")),
               "B": (("bVImaj7", "iim7b5", "V7", "i7"), ("iv7", "bVII7", "bIIImaj7", "V7"))}),
    intro=Section("A", lead=False, energy=0.85),
    form=(Section("A"), Section("B", groove=1), Section("A", energy=1.05)), cadence={"major": "ii7 V7", "minor": "iim7b5 V7"},
    final={"major": "Imaj9", "minor": "i9"},
    grooves=({"ride": "x...X.o.x...X.o.", "pedal": "....x.......x...", "kick": "g...g...g...g...",
              "snare": "..........g....."},
             {"ride": "x...X.o.x...X.o.", "pedal": "....x.......x...", "kick": "g...g...g..og...",
              "snare": "..g...g.....g..o"}),
    fills=({"snare": "x.o.x.x.", "kick": "......x."}, {"snare": "..x.o.x.", "tom_lo": "x......."}),
    bass=("W",),
    comp=("x.....o.........", "....x.......x...", "......x.......x.", "x.......x.....o."),
    comp_voices=4, comp_register=(50, 74), comp_legato=0.7, comp_random=True, bass_center=40,
    melody=Melody({"major": "major", "minor": "dorian"}, register=68, density=0.6, shape="wave",
                  phrase_bars=2, rest=0.25, leap=0.2, chromatic=0.2),
    kits=(40, 32),
    instruments={"drums": ("drums",), "bass": ("upright bass",),
                 "harmony": ("piano", "electric piano", "guitar"),
                 "lead": ("saxophone", "trumpet", "vibraphone", "clarinet")},
    mix={"drums": Mix(-10, 70, 35), "bass": Mix(-9, 58, 20), "harmony": Mix(-6, 48, 45),
         "lead": Mix(-6, 80, 50)},
    meters={"3/4": MeterStyle(  # the jazz waltz, walking in three
        grooves=({"ride": "x...X.o.X.o.", "pedal": "........x...", "kick": "g...........",
                  "snare": "......g....."},
                 {"ride": "x...X.o.X.o.", "pedal": "....x...x...", "kick": "g.......g...",
                  "snare": "..g.......g."}),
        fills=({"snare": "x.o.x."}, {"snare": "..x.o.", "tom_lo": "x....."}),
        bass=("W",), comp=("x.....o.....", "....x...x...", "......x.....", "x.......x..."),
        pad="x-----------"),
            "6/8": MeterStyle(  # Afro-Cuban 6/8: the bell over two dotted-quarter beats
        grooves=({"ride": "x...x.x...x.", "kick": "x.....x.....", "rim": "....x.......",
                  "pedal": "......x....."},),
        fills=({"snare": "x.x.xx"}, {"tom_hi": "x.x.", "tom_lo": "....x."}),
        bass=("R---5-R---5-", "R-----5---a-"), comp=("x.....o.....", "....x.....x.", "x.....x....."),
        pad="x-----x-----")},
))

_add(Style(
    "metal", tempo=(100, 176), feel="straight", swing=0.5, swing_unit=1, humanize_ms=3,
    tonics=(4, 2, 1, 9, 11, 6), modes=("minor",),
    progressions=_prog(
        minor={"A": (("i5", "i5", "bVI5", "bVII5"), ("i5", "bII5", "i5", "bVII5"),
                     ("i5", "bVII5", "bVI5", "bVII5"), ("i5", "iv5", "bVI5", "V5")),
               "B": (("bVI5", "bVII5", "i5", "i5"), ("iv5", "bVI5", "bVII5", "V5"))},
        # only when a request asks for a major key: power-metal anthems
        major={"A": (("I5", "V5", "vi5", "IV5"), ("I5", "IV5", "I5", "V5")),
               "B": (("IV5", "V5", "I5", "I5"), ("vi5", "IV5", "V5", "V5"))}),
    intro=Section("A", groove=2, comp=2, bass=2, lead=False, energy=0.9),
    form=(Section("A"), Section("B", groove=1, comp=1, bass=1, energy=1.05),
          Section("A", groove=2, comp=2, bass=2)),
    cadence={"minor": "bVI5 bVII5", "major": "IV5 V5"}, final={"minor": "i5", "major": "I5"},
    grooves=({"kick": "x.x.x.x.x.x.x.x.", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x.",
              "crash": "x..............."},
             {"kick": "XoxoXoxoXoxoXoxo", "snare": "....X.......X...", "ride": "X...X...X...X..."},
             {"kick": "x.x.....x.x.....", "snare": "........X.......", "crash": "x...x...x...x..."}),
    fills=({"tom_hi": "xx......", "tom_mid": "..xx....", "tom_lo": "....xx..", "floor": "......xx"},
           {"snare": "xxxxXXXX", "kick": "x.x.x.x."}),
    bass=("R.R.R.R.R.R.R.R.", "R.RRR.RRR.RRR.RR", "R-------R-------"),
    comp=("X.o.x.o.X.o.x.o.", "X.ooX.ooX.ooX.oo", "X-------X-------"),
    comp_voices=3, comp_register=(40, 62), comp_legato=0.6, bass_center=33,
    melody=Melody({"minor": "harmonic minor", "major": "major"}, register=71, density=0.7, unit=1, shape="wave",
                  phrase_bars=2, rest=0.2, leap=0.25),
    kits=(16,),
    instruments={"drums": ("drums",), "bass": ("bass",),
                 "harmony": ("distorted guitar",), "lead": ("lead guitar", "synth")},
    mix={"drums": Mix(-12, 64, 20), "bass": Mix(-10, 64, 5), "harmony": Mix(-6, 40, 25),
         "lead": Mix(-7, 88, 45)},
    meters={"6/8": MeterStyle(  # the triplet gallop and the 6/8 ballad-metal sway
        grooves=({"kick": "x.x.x.x.x.x.", "snare": "......X.....", "hat": "x.x.x.x.x.x.",
                  "crash": "x..........."},
                 {"kick": "x.xxx.x.xxx.", "snare": "......X.....", "ride": "X.x.x.X.x.x."},
                 {"kick": "x.....x.....", "snare": "......X.....", "crash": "x.....x....."}),
        fills=({"tom_hi": "xx", "tom_mid": "..xx", "floor": "....xx"}, {"snare": "xxxXXX", "kick": "x.x.x."}),
        bass=("R.R.R.R.R.R.", "R.RRR.R.RRR.", "R-----R-----"),
        comp=("X.o.x.X.o.x.", "X.ooX.X.ooX.", "X-----X-----"), pad="x-----x-----")},
    meter_note="no 3/4: metal's triple time is the 6/8 gallop",
))

_add(Style(
    "pop", tempo=(90, 128), feel="straight", swing=0.5, swing_unit=1, humanize_ms=3,
    tonics=(0, 7, 2, 9, 5, 4, 10), modes=("major", "major", "minor"),
    progressions=_prog(
        major={"A": (("I", "V", "vi", "IV"), ("vi", "IV", "I", "V"), ("I", "vi", "IV", "V"),
                     ("IV", "I", "V", "vi")),
               "B": (("IV", "V", "iii", "vi"), ("I", "V", "vi", "IV"), ("IVadd9", "I", "V", "V"))},
        minor={"A": (("i", "bVI", "bIII", "bVII"), ("i", "bVII", "bVI", "bVII")),
               "B": (("bVI", "bVII", "i", "i"), ("bIII", "bVII", "iv", "bVI"))}),
    intro=Section("A", lead=False, energy=0.85),
    form=(Section("A", energy=0.9), Section("B", groove=1, comp=1, bass=1, energy=1.05)),
    cadence={"major": "V", "minor": "bVII"},
    final={"major": "Iadd9", "minor": "i"},
    grooves=({"kick": "x.......x.x.....", "clap": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
             {"kick": "x.....x.x.......", "snare": "....x.......x...", "clap": "....x.......x...",
              "hat": "xoxoxoxoxoxoxoxo", "tamb": "....x.......x..."}),
    fills=({"snare": "x.x.xxxx"}, {"tom_hi": "x.x.", "tom_lo": "....x.x."}),
    bass=("R-----R-R-----5-", "R-R-.-R-R-R-.-5-"),
    comp=("x--x--x-x--x--x-", "x---x---x---x---"),
    comp_voices=4, comp_register=(52, 76), comp_legato=0.9, bass_center=38,
    comp_by_instrument={"synth pad": PAD, "strings": PAD},
    melody=Melody({"major": "major", "minor": "minor"}, register=72, density=0.6, shape="arch",
                  phrase_bars=2, rest=0.3, leap=0.1),
    kits=(24,),
    instruments={"drums": ("drums",), "bass": ("bass", "synth bass"),
                 "harmony": ("piano", "synth pad"),
                 "lead": ("synth", "flute", "violin", "clarinet")},
    mix={"drums": Mix(-9, 64, 30), "bass": Mix(-10, 64, 10), "harmony": Mix(-8, 56, 45),
         "lead": Mix(-6, 72, 50, 20)},
    meters={"3/4": MeterStyle(  # the 3/4 ballad
        grooves=({"kick": "x...........", "snare": "........x...", "hat": "x.x.x.x.x.x."},
                 {"kick": "x.......x...", "snare": "....x...x...", "hat": "xoxoxoxoxoxo"}),
        fills=({"snare": "x.xxxx"}, {"tom_hi": "x.", "tom_lo": "..x.x."}),
        bass=("R-------5---", "R---R---5---"), comp=("x---x---x---", "x-----x-----"),
        comp_by_instrument={"synth pad": "x-----------", "strings": "x-----------"}, pad="x-----------"),
            "6/8": MeterStyle(  # the 6/8 ballad
        grooves=({"kick": "x...........", "snare": "......x.....", "hat": "x.x.x.x.x.x."},
                 {"kick": "x...x.......", "snare": "......x.....", "hat": "xoxoxoxoxoxo",
                  "tamb": "......x....."}),
        fills=({"snare": "x.xxxx"}, {"tom_hi": "x.", "tom_lo": "..x.x."}),
        bass=("R-----5-----", "R---R-5---5-"), comp=("0.1.2.3.2.1.", "x.x.x.x.x.x."),
        comp_by_instrument={"synth pad": "x-----x-----", "strings": "x-----x-----"}, pad="x-----x-----")},
))

_add(Style(
    "reggae", tempo=(70, 92), feel="swing", swing=0.58, swing_unit=2, humanize_ms=6,
    tonics=(9, 7, 0, 2, 4, 5), modes=("minor", "major"),
    progressions=_prog(
        minor={"A": (("i", "iv", "i", "iv"), ("i", "bVII", "i", "bVII"), ("i", "bVII", "bVI", "bVII")),
               "B": (("iv", "i", "iv", "V"), ("bVI", "bVII", "i", "i"))},
        major={"A": (("I", "IV", "I", "V"), ("I", "IV", "V", "IV"), ("I", "vi", "IV", "V")),
               "B": (("IV", "V", "I", "vi"), ("ii", "V", "I", "I"))}),
    intro=Section("A", lead=False, energy=0.9),
    form=(Section("A"), Section("B", groove=1, comp=1, bass=1)), cadence={"minor": "V", "major": "V"},
    final={"minor": "i", "major": "I"},
    grooves=({"kick": "........x.......", "rim": "........x.......", "hat": "x.x.x.x.x.x.x.x."},
             {"kick": "x...x...x...x...", "rim": "........x.......", "hat": "x.x.x.x.x.x.x.x."}),
    fills=({"snare": "x.xx.x.x"}, {"tom_hi": "x.x.", "tom_lo": "....x.x."}),
    bass=("R---..R.5-..3-..", "..R-.5..8-.5.3.."),
    comp=("..x...x...x...x.", "..x.x.x...x.x.x."),
    comp_voices=3, comp_register=(58, 80), comp_legato=0.35, bass_center=36,
    melody=Melody({"minor": "minor pentatonic", "major": "major pentatonic"}, register=70,
                  density=0.5, shape="descending", phrase_bars=2, rest=0.35),
    kits=(8, 0),
    instruments={"drums": ("drums",), "bass": ("bass",),
                 "harmony": ("electric guitar", "organ"),
                 "lead": ("trumpet", "saxophone")},
    mix={"drums": Mix(-7, 64, 35), "bass": Mix(-5, 64, 10), "harmony": Mix(-6, 44, 55),
         "lead": Mix(-7, 80, 55)},
    meter_note="4/4 only: the one drop and the skank are a 4/4 feel",
))

_add(Style(
    "rock", tempo=(100, 150), feel="straight", swing=0.5, swing_unit=2, humanize_ms=4,
    tonics=(4, 9, 2, 7, 0), modes=("major", "minor"),
    progressions=_prog(
        major={"A": (("I5", "bVII5", "IV5", "I5"), ("I", "IV", "V", "IV"), ("I5", "IV5", "bVII5", "IV5")),
               "B": (("IV", "V", "I", "I"), ("vi", "IV", "I", "V"), ("IV5", "IV5", "I5", "V5"))},
        minor={"A": (("i5", "bVII5", "bVI5", "bVII5"), ("i", "iv", "bVII", "i")),
               "B": (("bVI5", "bVII5", "i5", "i5"), ("iv5", "bVI5", "bVII5", "V5"))}),
    intro=Section("A", lead=False, energy=0.9),
    form=(Section("A"), Section("B", groove=1, comp=1, bass=1, energy=1.05)), cadence={"major": "V5", "minor": "bVII5"},
    final={"major": "I5", "minor": "i5"},
    grooves=({"kick": "x.....x.x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
             {"kick": "x.....x.x.x.....", "snare": "....X.......X...", "ride": "x.x.x.x.x.x.x.x.",
              "crash": "x..............."}),
    fills=({"snare": "x.xxx.x.", "tom_lo": "......x."}, {"tom_hi": "xx..", "tom_mid": "..xx..",
                                                       "floor": "....xxxx"}),
    bass=("R.R.R.R.R.R.R.R.", "R.R.R.R.R.R.5.8."),
    comp=("x.x.x.x.x.x.x.x.", "X-------X---x-x-"),
    comp_voices=3, comp_register=(40, 67), comp_legato=0.8, bass_center=36, strum_ms=6,
    melody=Melody({"major": "major pentatonic", "minor": "minor pentatonic"}, register=69,
                  density=0.6, shape="arch", phrase_bars=2, rest=0.3, leap=0.2, bends=True),
    kits=(0, 16),
    instruments={"drums": ("drums",), "bass": ("bass",),
                 "harmony": ("distorted guitar", "electric guitar"),
                 "lead": ("lead guitar",)},
    mix={"drums": Mix(-11, 64, 30), "bass": Mix(-10, 64, 10), "harmony": Mix(-6, 42, 35),
         "lead": Mix(-7, 86, 45)},
    meters={"6/8": MeterStyle(  # the 6/8 rock ballad
        grooves=({"kick": "x...........", "snare": "......x.....", "hat": "x.x.x.x.x.x."},
                 {"kick": "x...x.x.....", "snare": "......X.....", "ride": "x.x.x.x.x.x.",
                  "crash": "x..........."}),
        fills=({"snare": "x.xxx.", "tom_lo": "....x."}, {"tom_hi": "xx", "tom_mid": "..xx", "floor": "....xx"}),
        bass=("R-----R-----", "R.R.R.R.R.5."), comp=("x.x.x.x.x.x.", "X-----X---x-"),
        pad="x-----x-----")},
    meter_note="no 3/4: a rock waltz is a rarity; its triple time is the 6/8 ballad here",
))

# -- style versions ---------------------------------------------------------------------------------
# Version 1 is what the built-in library (and so every shipped model) was made with; it stays as it
# is. Version 2 revises the thinnest styles: hip-hop gets a sub-heavy 808-style bass that follows
# the kick and a swung sixteenth hi-hat with rolls; pop a brighter, compressed mix with sixteenth
# hats and a layered clap. Compose requests use the newest version; a library is built with
# builder.LIBRARY_STYLE_VERSION until the models are retrained on a newer one.
STYLE_VERSIONS: dict[int, dict[str, Style]] = {1: dict(STYLES)}
STYLE_VERSIONS[2] = {**STYLES, "hiphop": replace(
    STYLES["hiphop"],
    grooves=({"kick": "x......xx.x.....", "snare": "....X.......X...", "hat": "xgxgxgxgxgxgxgxg"},
             {"kick": "x.x....x..x..x..", "snare": "....X.......X..g", "hat": "xgxgxgxxxgxgxxxx",
              "open": "..............x."}),
    bass=("R------RR-R-----", "R------R5-R---8-"),   # the 808 plays with the kick and rings
    bass_center=31, comp_register=(53, 77),
    mix={"drums": Mix(-7, 64, 12), "bass": Mix(-5, 64, 0), "harmony": Mix(-9, 52, 35),
         "lead": Mix(-8, 76, 40)},
    bus=Bus(threshold_db=-20.0, ratio=2.5)), "pop": replace(
    STYLES["pop"],
    grooves=({"kick": "x.......x.x.....", "snare": "....x.......x...", "clap": "....x.......x...",
              "hat": "xoxoxoxoxoxoxoxo"},
             {"kick": "x.....x.x.......", "snare": "....x.......x...", "clap": "....x.......x...",
              "hat": "xoxoxoxoxoxoxoxo", "tamb": "..x...x...x...x."}),
    comp_register=(57, 81),
    mix={"drums": Mix(-8, 64, 25), "bass": Mix(-9, 64, 5), "harmony": Mix(-8, 50, 40, 30),
         "lead": Mix(-5, 74, 45, 30)},
    bus=Bus(threshold_db=-22.0, ratio=3.0, shelf_db=3.0))}
STYLE_VERSION = max(STYLE_VERSIONS)
"""The newest styles: what compose requests are written with."""


def style_of(genre: str, version: int = STYLE_VERSION) -> Style:
    """A genre's style in a version (KeyError for an unknown one)."""
    return STYLE_VERSIONS[version][genre]


assert set(STYLES) == set(GENRES), "every genre needs a style"
for _style in (st for version in STYLE_VERSIONS.values() for st in version.values()):
    # a request may ask any genre for any key: every style writes in both modes
    assert all(set(d) == set(KEY_MODES) for d in (_style.progressions, _style.cadence, _style.final,
                                                _style.melody.scale)), _style.genre
    for _meter in _style.meters:
        _steps = METERS[_meter].steps
        _p = _style.patterns(_meter)
        assert all(len(x) == _steps for g in _p.grooves for x in g.values()), (_style.genre, _meter)
        assert all(len(x) <= _steps // 2 for f in _p.fills for x in f.values()), (_style.genre, _meter)
        assert all(len(x) == _steps for x in (*_p.bass, *_p.comp, *_p.comp_by_instrument.values(), _p.pad)
                   if x != "W"), (_style.genre, _meter)
    for _role, _names in _style.instruments.items():
        assert _role in ROLES and all(INSTRUMENTS[n].role == _role for n in _names), _style.genre
