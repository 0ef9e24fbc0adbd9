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
