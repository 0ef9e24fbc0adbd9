"""The one table of output formats: name, extension, MIME type, encoder, and which tracks can have it.

Everything that names a format (request parsing, the store, the service, the CLI, OpenAPI and, through
/api/options, the page) reads this table. A new format is one more row here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import InvalidRequest
from .track import Track


@dataclass(frozen=True)
class Format:
    """One output format.

    name: what a request's `format` field says ("wav").
    extension: the file extension and the URL suffix of /api/tracks/{id}/audio.<extension>.
    encode: Track -> bytes (a track's audio mono or stereo, at its rate: Track.audio).
    filename: the file a stored track keeps this encoding in, given the track's metadata.
    note: Track metadata -> a sentence the page shows next to the download, or None.
    """
    name: str
    label: str
    extension: str
    mime: str
    aliases: tuple[str, ...]
    description: str
    encode: Callable[[Track], bytes]
    filename: Callable[[dict], str]
    note: Callable[[dict], str | None] = lambda meta: None

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "extension": self.extension,
                "mime": self.mime, "aliases": list(self.aliases), "description": self.description}


def _audio(fmt: str) -> Callable[[Track], bytes]:
    def encode(track: Track) -> bytes:
        from . import audio
        loop = track.meta.get("loop")
        points = (loop["start"], loop["end"]) if loop and fmt == "wav" else None
        return audio.encode(track.audio, track.sr, fmt, loop=points)
    return encode


def _mp3_note(meta: dict) -> str | None:
    if meta.get("loop"):
        return ("not gapless: MP3 pads the start and end (encoder delay) and this file carries no "
                "gapless tag, so a player adds a short gap each time round; loop the WAV (its smpl "
                "chunk marks the loop)")
    return None


def _midi(track: Track) -> bytes:
    """The score the engine wrote, or a transcription of the audio when it wrote none."""
    from . import midi
    score = track.midi
    if score is None:  # notes are heard in mono at 22050 Hz, whatever the track's quality
        from . import audio
        score = midi.transcribe(*audio.analysis(track.audio, track.sr), tempo=track.meta.get("tempo"))
    return midi.to_bytes(score)


def _midi_note(meta: dict) -> str | None:
    if meta.get("has_score"):
        return None
    return "a transcription: this mode makes audio, so the notes are detected from it"


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("wav", "WAV", "wav", "audio/wav", ("wave",), "16-bit PCM, lossless, at the track's rate and "
           "channels (quality); a loop's points in its smpl chunk",
           _audio("wav"), lambda meta: "audio.wav"),
    Format("mp3", "MP3", "mp3", "audio/mpeg", (), "MPEG layer III, constant bit rate, mono or stereo "
           "as the track is",
           _audio("mp3"), lambda meta: "audio.mp3", _mp3_note),
    Format("midi", "MIDI", "mid", "audio/midi", ("mid",), "the score, or a transcription of the audio",
           _midi, lambda meta: "score.mid" if meta.get("has_score") else "transcription.mid",
           _midi_note),
)}
DEFAULT = "wav"
MASTER = FORMATS["wav"]
"""The encoding every stored track is saved in; the others are made from it on first request."""

_BY_ALIAS = {alias: f for f in FORMATS.values() for alias in (f.name, f.extension, *f.aliases)}


def allowed() -> str:
    return ", ".join(FORMATS)


def parse(value: Any, *, field: str = "format") -> Format:
    """A Format from a request's `format` (name, extension or alias, any case); None or '' is the
    default. Anything else is InvalidRequest (400) naming the field and the allowed values."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return FORMATS[DEFAULT]
    fmt = _BY_ALIAS.get(value.strip().lower().lstrip(".")) if isinstance(value, str) else None
    if fmt is None:
        raise InvalidRequest(f"unknown format {value!r}; one of: {allowed()} "
                             f"(also accepted: {', '.join(sorted(set(_BY_ALIAS) - set(FORMATS)))})",
                             field=field)
    return fmt


def by_extension(ext: str) -> Format:
    """The format whose URL suffix or alias is ext; InvalidRequest otherwise."""
    return parse(ext)


def download_name(meta: dict, fmt: Format) -> str:
    return f"melodymaker-{meta['genre']}-{meta['mode']}-{meta['seed']}.{fmt.extension}"


STEMS_FILE = "stems.zip"
STAMP = (2026, 1, 1, 0, 0, 0)  # every member's date, so the same track gives the same bytes


def stems_zip(track: Track) -> bytes:
    """A ZIP of the track's stems, one 16-bit WAV per role (drums.wav, bass.wav, harmony.wav,
    lead.wav: those the arrangement used), sample-aligned with the mix and summing to it (stereo for
    a stereo mix), and the
    score (score.mid) when there is one."""
    import io
    import zipfile

    from . import audio, midi
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for role, part in track.stems.items():
            z.writestr(zipfile.ZipInfo(f"{role}.wav", STAMP), audio.encode(part, track.sr, "wav"),
                       compress_type=zipfile.ZIP_DEFLATED)
        if track.midi is not None:
            z.writestr(zipfile.ZipInfo("score.mid", STAMP), midi.to_bytes(track.midi),
                       compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def links(track_id: str) -> dict[str, str]:
    return {f.name: f"/api/tracks/{track_id}/audio.{f.extension}" for f in FORMATS.values()}
