"""GenerationRequest: the one place a generation request is parsed and validated.

Accepts the structured form
    {"genre": "jazz", "instruments": ["piano", "bass"], "tempo": 96, "length": 20,
     "mode": "dataset", "seed": 7, "format": "mp3", "key": "A minor", "meter": "3/4", "loop": true,
     "quality": "studio"}
and the original MelodyMaker page's strings
    {"genre": "HipHop", "instruments": "Piano", "tempo": "Medium (90-120 BPM)",
     "length": "Demo (30 seconds)", "generate_mode": 0}.
Fields it does not know are accepted (clients send extras) and listed in `ignored_fields`, so the
track's metadata and the X-Ignored-Fields header show a typo such as "Key" instead of losing it.
"""
from __future__ import annotations

import random
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from . import formats, keys
from . import options as opt
from .engines import DEFAULT_MODE, MODE_NUMBERS, MODES
from .errors import InvalidRequest


@dataclass(frozen=True)
class GenerationRequest:
    """A validated request. tempo is None when the user left it to the genre."""
    genre: str
    instruments: tuple[str, ...] = ()
    tempo: float | None = None
    length: float = float(opt.LENGTH_DEFAULT)
    mode: str = DEFAULT_MODE
    seed: int = 0
    format: str = formats.DEFAULT
    candidates: int = 1
    key: str = opt.KEY_AUTO
    meter: str = opt.METER_DEFAULT
    loop: bool = False
    quality: str = opt.QUALITY_DEFAULT
    ignored_fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["instruments"] = list(self.instruments)
        d["ignored_fields"] = list(self.ignored_fields)
        return d

    @property
    def musical_key(self) -> keys.Key | None:
        """The requested key, or None for 'auto'."""
        return keys.parse(self.key)

    @property
    def time_signature(self) -> opt.Meter:
        return opt.METERS[self.meter]

    @property
    def output(self) -> opt.Quality:
        """The sample rate and channels the finished track has (options.QUALITIES)."""
        return opt.QUALITIES[self.quality]

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> "GenerationRequest":
        """Validate raw request data (JSON body, form or CLI args); raise InvalidRequest."""
        if data is None:
            raise InvalidRequest("the request body must be a JSON object", field="body")
        if not isinstance(data, Mapping):
            raise InvalidRequest("the request body must be a JSON object, not "
                                 f"{type(data).__name__}", field="body")
        seed = parse_seed(data.get("seed"))
        return cls(
            genre=parse_genre(data.get("genre")),
            instruments=parse_instruments(data.get("instruments")),
            tempo=parse_tempo(data.get("tempo"), seed),
            length=parse_length(data.get("length")),
            mode=parse_mode(data.get("mode"), data.get("generate_mode")),
            seed=seed,
            format=parse_format(data.get("format")),
            candidates=parse_candidates(data.get("candidates")),
            key=parse_key(data.get("key")),
            meter=parse_meter(data.get("meter")),
            loop=parse_loop(data.get("loop")),
            quality=parse_quality(data.get("quality")),
            ignored_fields=ignored_fields(data),
        )


FIELDS = ("genre", "instruments", "tempo", "length", "mode", "generate_mode", "seed", "format",
          "candidates", "key", "meter", "loop", "quality")
"""Every field a request may carry (ignored_fields, too: a queued job's request is parsed again)."""
IGNORED_MAX, IGNORED_NAME_MAX = 50, 100


def _key(text: str) -> str:
    """Normalise a user-typed name: case, spaces, dashes and underscores do not matter."""
    return re.sub(r"[\s_\-]+", "", text.strip().lower())


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_genre(value: Any) -> str:
    allowed = ", ".join(opt.GENRES)
    if _blank(value):
        raise InvalidRequest(f"genre is required; one of: {allowed}", field="genre")
    if isinstance(value, str):
        by_key = {_key(g): g for g in opt.GENRES}
        genre = by_key.get(_key(value))
        if genre:
            return genre
    raise InvalidRequest(f"unknown genre {value!r}; one of: {allowed}", field="genre")


def parse_instruments(value: Any) -> tuple[str, ...]:
    """A list of catalogue names, or one string (the original page), or 'a, b'."""
    if _blank(value):
        return ()
    if isinstance(value, str):
        items = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise InvalidRequest("instruments must be a list of names or one name", field="instruments")
    by_key = {_key(name): name for name in opt.INSTRUMENTS}
    by_key.update({_key(i.label): name for name, i in opt.INSTRUMENTS.items()})
    chosen: list[str] = []
    for item in items:
        name = by_key.get(_key(item)) if isinstance(item, str) else None
        if name is None:
            raise InvalidRequest(f"unknown instrument {item!r}; choose from: "
                                 + ", ".join(opt.INSTRUMENTS), field="instruments")
        if name not in chosen:
            chosen.append(name)
    if len(chosen) > 8:
        raise InvalidRequest("at most 8 instruments", field="instruments")
    return tuple(chosen)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(bpm|s|sec|secs|seconds)?\s*", value, re.I)
        if m:
            return float(m.group(1))
    return None


def parse_tempo(value: Any, seed: int) -> float | None:
    """BPM in [TEMPO_MIN, TEMPO_MAX], or a preset label mapped to a seeded BPM in its range."""
    if _blank(value):
        return None
    presets = ", ".join(repr(p.label) for p in opt.TEMPO_PRESETS)
    allowed = f"a BPM from {opt.TEMPO_MIN} to {opt.TEMPO_MAX}, or one of {presets}"
    bpm = _number(value)
    if bpm is None and isinstance(value, str):
        for p in opt.TEMPO_PRESETS:
            # 'Medium (90-120 BPM)', 'medium', 'Very Fast' all name the preset
            if _key(value) in (_key(p.label), _key(p.label.split("(")[0])):
                return float(random.Random(f"tempo:{seed}:{p.label}").randint(p.low, p.high))
    if bpm is None or bpm != bpm:
        raise InvalidRequest(f"tempo {value!r} is not understood; use {allowed}", field="tempo")
    if not opt.TEMPO_MIN <= bpm <= opt.TEMPO_MAX:
        raise InvalidRequest(f"tempo {bpm:g} BPM is out of range; use {allowed}", field="tempo")
    return bpm


def parse_length(value: Any) -> float:
    """Seconds in [LENGTH_MIN, LENGTH_MAX], or a preset label such as 'Demo (30 seconds)'."""
    if _blank(value):
        return float(opt.LENGTH_DEFAULT)
    presets = ", ".join(repr(k) for k in opt.LENGTH_PRESETS)
    allowed = f"seconds from {opt.LENGTH_MIN} to {opt.LENGTH_MAX}, or one of {presets}"
    seconds = _number(value)
    if seconds is None and isinstance(value, str):
        for label, preset in opt.LENGTH_PRESETS.items():
            if _key(value) in (_key(label), _key(label.split("(")[0])):
                return float(preset)
    if seconds is None or seconds != seconds:
        raise InvalidRequest(f"length {value!r} is not understood; use {allowed}", field="length")
    if not opt.LENGTH_MIN <= seconds <= opt.LENGTH_MAX:
        raise InvalidRequest(f"length {seconds:g} s is out of range; use {allowed}", field="length")
    return seconds


def parse_mode(mode: Any, generate_mode: Any) -> str:
    allowed = ", ".join(MODES)
    numbers = ", ".join(f"{n} = {m}" for n, m in sorted(MODE_NUMBERS.items()))
    from_number = None
    if not _blank(generate_mode):
        n = _number(generate_mode)
        if n is None or n != int(n) or int(n) not in MODE_NUMBERS:
            raise InvalidRequest(f"generate_mode {generate_mode!r} is not one of: {numbers}",
                                 field="generate_mode")
        from_number = MODE_NUMBERS[int(n)]
    if _blank(mode):
        return from_number or DEFAULT_MODE
    if not isinstance(mode, str) or _key(mode) not in {_key(m) for m in MODES}:
        raise InvalidRequest(f"unknown mode {mode!r}; one of: {allowed}", field="mode")
    name = next(m for m in MODES if _key(m) == _key(mode))
    if from_number and from_number != name:
        raise InvalidRequest(f"mode {name!r} and generate_mode {generate_mode!r} ({from_number}) "
                             "disagree; send one of them", field="mode")
    return name


def parse_seed(value: Any) -> int:
    """An integer in [0, 2**31-1]; absent means a fresh random seed (recorded in the track)."""
    if _blank(value):
        return secrets.randbelow(opt.SEED_MAX + 1)
    n = _number(value)
    if n is None or n != int(n) or not 0 <= n <= opt.SEED_MAX:
        raise InvalidRequest(f"seed {value!r} must be a whole number from 0 to {opt.SEED_MAX}",
                             field="seed")
    return int(n)


def parse_format(value: Any) -> str:
    """A format name from the one table (melodymaker.formats): wav, mp3 or midi, or an alias."""
    return formats.parse(value).name


def parse_candidates(value: Any) -> int:
    """How many variations to generate; the one with the best genre fit is kept."""
    if _blank(value):
        return 1
    n = _number(value)
    if n is None or n != int(n) or not opt.CANDIDATES_MIN <= n <= opt.CANDIDATES_MAX:
        raise InvalidRequest(f"candidates {value!r} must be a whole number from {opt.CANDIDATES_MIN} "
                             f"to {opt.CANDIDATES_MAX}", field="candidates")
    return int(n)


def parse_key(value: Any) -> str:
    """'auto' (the default) or a key's name as the server spells it: 'A minor', 'F# major'."""
    return keys.name(keys.parse(value))


def parse_meter(value: Any) -> str:
    """A time signature of options.METERS ('4/4', '3/4', '6/8'); absent means 4/4."""
    if _blank(value):
        return opt.METER_DEFAULT
    text = re.sub(r"\s+", "", value) if isinstance(value, str) else None
    if text not in opt.METERS:
        raise InvalidRequest(f"meter {value!r} is not one of: {', '.join(opt.METERS)}", field="meter")
    return text


LOOP_WORDS = {"true": True, "1": True, "false": False, "0": False}


def parse_loop(value: Any) -> bool:
    """JSON true or false, or a form's 'true', 'false', '1', '0' (any case); absent means false."""
    if _blank(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = LOOP_WORDS.get(value.strip().lower()) if isinstance(value, str) else None
    if word is None:
        raise InvalidRequest(f"loop {value!r} must be true or false (a form may send true, false, "
                             "1 or 0)", field="loop")
    return word


def parse_quality(value: Any) -> str:
    """'standard' (the default: 22050 Hz mono) or 'studio' (44100 Hz stereo), any case."""
    if _blank(value):
        return opt.QUALITY_DEFAULT
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in opt.QUALITIES:
        allowed = "; ".join(f"{q.name} ({q.label})" for q in opt.QUALITIES.values())
        raise InvalidRequest(f"quality {value!r} is not one of: {allowed}", field="quality")
    return name


def ignored_fields(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the fields a request carries that no parse_* reads, in the order sent (at most
    IGNORED_MAX, each cut to IGNORED_NAME_MAX characters), with any listed by an earlier parse of
    the same request (its to_dict()'s ignored_fields)."""
    earlier = data.get("ignored_fields")
    names = [n for n in earlier if isinstance(n, str)] if isinstance(earlier, (list, tuple)) else []
    names += [str(n) for n in data if n not in FIELDS and n != "ignored_fields"]
    return tuple(dict.fromkeys(n[:IGNORED_NAME_MAX] for n in names))[:IGNORED_MAX]
