"""Check, before any work, that the torch device params.yaml names exists on this machine."""

from __future__ import annotations

from ..errors import ConfigError


def check_device(device: str, key: str, source: str = "params.yaml") -> None:
    """Raise :class:`ConfigError` naming ``key`` when ``device`` is not usable here.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    key : str
        The params key that set it (e.g. ``"extract.device"``), named in the message.
    source : str
        The params file, named in the message.
    """
    if device in ("auto", "cpu"):
        return
    import torch

    if device.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if n == 0:
            raise ConfigError(f"{source}: {key} = {device!r} but torch sees no CUDA device on this machine "
                              f"(torch {torch.__version__}); use 'cpu' (or 'auto' where the key allows it)")
        if index >= n:
            raise ConfigError(f"{source}: {key} = {device!r} but torch sees only {n} CUDA device(s) (0..{n - 1})")
    elif device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"{source}: {key} = 'mps' but torch has no MPS backend on this machine; use 'cpu'")
