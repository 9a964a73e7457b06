"""What the CPU offers for training: its native bf16 instruction sets (one place for the check)."""

from __future__ import annotations

import functools
from pathlib import Path


def cpu_bf16_flags() -> list[str]:
    """The CPU's native bf16 instruction sets, from /proc/cpuinfo (empty where unknown)."""
    return list(_cpu_bf16_flags())


@functools.lru_cache(maxsize=1)
def _cpu_bf16_flags() -> tuple[str, ...]:
    """:func:`cpu_bf16_flags`, read once per process (extraction asks at every search stage)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return ()
    return tuple(sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}))


def cpu_has_bf16() -> bool:
    """True when bf16 autocast runs natively (AVX512-BF16 or AMX-BF16); without them it is slower than fp32."""
    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_bf16_flags()))
