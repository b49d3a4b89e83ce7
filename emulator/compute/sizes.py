"""Azure VM sizes: cores, memory and GPUs of the sizes compute clusters and instances use.

Locally a size is informational (``compute show``, ``list-sizes``), becomes container
limits on the docker runtime (capped at what this machine has, GPUs passed through),
and decides whether a job needs GPUs this machine lacks.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from emulator.errors import ValidationError

DEFAULT_SIZE = "Standard_DS3_v2"  # Azure's default for clusters and instances


@dataclass(frozen=True)
class VmSize:
    name: str
    family: str
    cores: int
    memory_gb: float
    gpus: int = 0
    gpu: str | None = None


def _series(family: str, spec: str, gpu: str | None = None) -> list[VmSize]:
    """``"name cores memory [gpus]; ..."`` as VmSize rows."""
    rows = []
    for item in spec.split(";"):
        name, cores, memory, *gpus = item.split()
        rows.append(
            VmSize(
                f"Standard_{name}",
                family,
                int(cores),
                float(memory),
                int(gpus[0]) if gpus else 0,
                gpu if gpus else None,
            )
        )
    return rows


SIZES: dict[str, VmSize] = {
    s.name.lower(): s
    for s in [
        *_series(
            "standardDSv2Family",
            "DS1_v2 1 3.5; DS2_v2 2 7; DS3_v2 4 14; DS4_v2 8 28; DS5_v2 16 56; "
            "DS11_v2 2 14; DS12_v2 4 28; DS13_v2 8 56; DS14_v2 16 112",
        ),
        *_series(
            "standardDv2Family",
            "D1_v2 1 3.5; D2_v2 2 7; D3_v2 4 14; D4_v2 8 28; D5_v2 16 56; "
            "D11_v2 2 14; D12_v2 4 28; D13_v2 8 56; D14_v2 16 112",
        ),
        *_series(
            "standardDSv3Family", "D2s_v3 2 8; D4s_v3 4 16; D8s_v3 8 32; D16s_v3 16 64; D32s_v3 32 128; D64s_v3 64 256"
        ),
        *_series("standardDv3Family", "D2_v3 2 8; D4_v3 4 16; D8_v3 8 32; D16_v3 16 64; D32_v3 32 128; D64_v3 64 256"),
        *_series("standardDDSv4Family", "D2ds_v4 2 8; D4ds_v4 4 16; D8ds_v4 8 32; D16ds_v4 16 64; D32ds_v4 32 128"),
        *_series("standardDSv5Family", "D2s_v5 2 8; D4s_v5 4 16; D8s_v5 8 32; D16s_v5 16 64; D32s_v5 32 128"),
        *_series(
            "standardFSv2Family",
            "F2s_v2 2 4; F4s_v2 4 8; F8s_v2 8 16; F16s_v2 16 32; F32s_v2 32 64; "
            "F48s_v2 48 96; F64s_v2 64 128; F72s_v2 72 144",
        ),
        *_series(
            "standardESv3Family",
            "E2s_v3 2 16; E4s_v3 4 32; E8s_v3 8 64; E16s_v3 16 128; E32s_v3 32 256; E64s_v3 64 432",
        ),
        *_series("standardEDSv4Family", "E4ds_v4 4 32; E8ds_v4 8 64; E16ds_v4 16 128; E32ds_v4 32 256"),
        *_series(
            "standardNCSv3Family",
            "NC6s_v3 6 112 1; NC12s_v3 12 224 2; NC24s_v3 24 448 4; NC24rs_v3 24 448 4",
            "NVIDIA Tesla V100",
        ),
        *_series(
            "standardNCASv3_T4Family",
            "NC4as_T4_v3 4 28 1; NC8as_T4_v3 8 56 1; NC16as_T4_v3 16 110 1; NC64as_T4_v3 64 440 4",
            "NVIDIA Tesla T4",
        ),
        *_series(
            "standardNCADSA100v4Family",
            "NC24ads_A100_v4 24 220 1; NC48ads_A100_v4 48 440 2; NC96ads_A100_v4 96 880 4",
            "NVIDIA A100 PCIe",
        ),
        *_series("standardNDSv2Family", "ND40rs_v2 40 672 8", "NVIDIA Tesla V100"),
        *_series("standardNDASv4_A100Family", "ND96asr_v4 96 900 8", "NVIDIA A100"),
        *_series("standardNVSv3Family", "NV12s_v3 12 112 1; NV24s_v3 24 224 2; NV48s_v3 48 448 4", "NVIDIA Tesla M60"),
    ]
}


def lookup(name: str | None) -> VmSize:
    """The size named ``name`` (case-insensitive, as Azure reads it; the default when None).

    Raises:
        ValidationError: an unknown size, with the closest known names.
    """
    key = str(name or DEFAULT_SIZE).lower()
    if key in SIZES:
        return SIZES[key]
    names = [s.name for s in SIZES.values()]
    import difflib  # only an unknown size's message needs difflib

    close = (
        difflib.get_close_matches(str(name), names, n=4, cutoff=0.6)
        or [n for n in names if n.lower().startswith(key.rstrip("_v0123456789")[:11])][:4]
    )
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise ValidationError(
        f"Unknown VM size '{name}'.{hint} List the sizes amlemu knows with `amlemu compute list-sizes`."
    )


def host_gpu_count() -> int:
    """GPUs this machine exposes (NVIDIA device nodes)."""
    return len(glob.glob("/dev/nvidia[0-9]*"))


def check_gpus(compute_name: str, size: VmSize) -> None:
    """A job on a GPU size needs the GPUs here; fail clearly when this machine lacks them."""
    have = host_gpu_count()
    if size.gpus > have:
        raise ValidationError(
            f"Compute '{compute_name}' has size {size.name} ({size.gpus} x {size.gpu}), but this machine has "
            f"{have or 'no'} GPU{'s' if have != 1 else ''}, so a job on it cannot run here. Use a CPU size "
            f"(e.g. {DEFAULT_SIZE}) for local runs, or run on Azure ML with AMLEMU_BACKEND=azure."
        )


def node_limits(size: VmSize) -> dict:
    """One node of ``size`` as run-request limits (``cpu_limit``, ``memory_limit``, ``gpus``).

    Cores and memory are capped at this machine's; GPUs are not (:func:`check_gpus` says when
    this machine lacks them).
    """
    cores = min(float(size.cores), float(os.cpu_count() or 1))
    memory = size.memory_gb * 2**30
    try:
        memory = min(memory, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        pass
    return {"cpu_limit": cores, "memory_limit": int(memory), "gpus": size.gpus}


def container_limits(size: VmSize) -> dict:
    """The docker options for one node of ``size``: what the docker runtime sets at creation."""
    from emulator.runtime.docker import limit_options  # only docker runs need the docker runtime (and its SDK)

    return limit_options(**node_limits(size))


def size_view(size: VmSize) -> dict:
    """A size as ``az ml compute list-sizes`` prints one."""
    return {
        "name": size.name,
        "family": size.family,
        "v_cp_us": size.cores,
        "gpus": size.gpus,
        "memory_gb": size.memory_gb,
        "low_priority_capable": True,
        "premium_io": "s" in size.name.split("_")[1].lower(),  # the "s" sizes take premium disks
        "supported_compute_types": ["AmlCompute", "ComputeInstance"],
    }
