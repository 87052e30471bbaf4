"""Peak resident memory of one section of a process (``ru_maxrss`` only ever grows).

:class:`PeakRSS` samples ``VmRSS`` from ``/proc/self/status`` in a background thread and, where
the kernel allows it, resets the high-water mark ``VmHWM`` (write ``5`` to
``/proc/self/clear_refs``) at the start of the section and reads it at the end; the reported
peak is the larger of the two (the sampler can miss a spike shorter than its interval, VmHWM
cannot). Both count file-backed pages (memory-mapped Arrow files) as well as anonymous memory.
"""

from __future__ import annotations

import re
import resource
import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def status_mb(field: str = "VmRSS") -> float | None:
    """One field of ``/proc/self/status`` in MiB (None where /proc is unavailable)."""
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) / 1024.0 if m else None


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel refuses."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    hwm, rss = status_mb("VmHWM"), status_mb("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 1.0


def maxrss_mb() -> float:
    """Lifetime peak RSS of this process (MiB, Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class PeakRSS:
    """Context manager measuring the peak RSS of the enclosed section.

    Parameters
    ----------
    interval_s : float
        Sampling period of the background thread.

    Attributes (after exit)
    -----------------------
    start_mb : float, RSS on entry
    peak_mb : float, highest RSS seen in the section (max of the samples and of VmHWM when reset worked)
    increase_mb : float, ``peak_mb - start_mb``
    sampled_peak_mb : float, highest sample
    hwm_reset : bool, whether VmHWM was reset on entry (else only the samples count)
    n_samples : int
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s

    def __enter__(self) -> PeakRSS:
        self.hwm_reset = reset_hwm()
        self.start_mb = status_mb("VmRSS") or maxrss_mb()
        self.sampled_peak_mb = self.start_mb
        self.n_samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            v = status_mb("VmRSS")
            if v is not None:
                self.sampled_peak_mb = max(self.sampled_peak_mb, v)
                self.n_samples += 1
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        hwm = status_mb("VmHWM") if self.hwm_reset else None
        self.peak_mb = max(self.sampled_peak_mb, hwm or 0.0)
        self.increase_mb = self.peak_mb - self.start_mb

    def as_dict(self) -> dict:
        return {"peak_rss_mb": round(self.peak_mb, 1), "rss_start_mb": round(self.start_mb, 1),
                "rss_increase_mb": round(self.increase_mb, 1),
                "rss_method": "VmHWM reset + VmRSS samples" if self.hwm_reset else "VmRSS samples"}
