#!/usr/bin/env python3
"""Print sample rate, duration, RMS and dominant frequency of 16-bit PCM WAV files
(first channel). 'active' = 100 ms windows with RMS > 0.01 (FFT over those only).
Needs python3-numpy (Debian); run with /usr/bin/python3 if a pyenv python shadows it."""
import sys, wave
import numpy as np
for p in sys.argv[1:]:
    w = wave.open(p); sr = w.getframerate(); ch = w.getnchannels(); n = w.getnframes()
    x = np.frombuffer(w.readframes(n), dtype='<i2').astype(float)
    x = x[: len(x) // ch * ch].reshape(-1, ch)[:, 0] / 32768.0
    rms = float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0
    win = int(sr * 0.1)
    act = [x[i:i + win] for i in range(0, len(x) - win, win) if np.sqrt(np.mean(x[i:i + win] ** 2)) > 0.01]
    y = np.concatenate(act) if act else x
    f = np.abs(np.fft.rfft(y * np.hanning(len(y)))); fr = np.fft.rfftfreq(len(y), 1 / sr)
    print(f"{p}: {sr} Hz ch={ch} dur={len(x)/sr:.2f}s rms={rms:.4f} ({20*np.log10(rms+1e-12):.1f} dBFS) "
          f"active={len(act)*0.1:.1f}s dominant={fr[np.argmax(f)]:.1f} Hz")
