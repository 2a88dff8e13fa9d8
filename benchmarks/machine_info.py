"""What a benchmark records of the machine it ran on: cores, load, platform and
the CPU with the instruction sets its matrix products can use.

Speed ratios depend on the CPU as much as on the code: oneDNN's float32 matrix
products use AVX-512 where it exists, and bfloat16 ones AVX512-BF16 or AMX. The
JSON of a run names them, so a result read later says which kind of core it
came from. Standard library only.
"""

import os
import pathlib
import platform

#: Instruction-set flags of ``/proc/cpuinfo`` that decide a matrix product's
#: speed, in the order the reports list them, with the names they print.
MATRIX_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX512-BF16",
    "amx_bf16": "AMX-BF16",
}
CPUINFO = pathlib.Path("/proc/cpuinfo")


def cpu_from_cpuinfo(text: str) -> dict:
    """``{"model": str | None, "matrix_flags": [flag, ...]}`` from the text of
    ``/proc/cpuinfo`` (its first processor): the model name and which of
    :data:`MATRIX_FLAGS` it has, in that order.

    >>> cpu_from_cpuinfo("model name\\t: Xeon\\nflags\\t\\t: fpu avx2 avx512f\\n")
    {'model': 'Xeon', 'matrix_flags': ['avx2', 'avx512f']}
    """
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name"),
        "matrix_flags": [flag for flag in MATRIX_FLAGS if flag in flags],
    }


def machine() -> dict:
    """The machine's cores (all, and those this process may run on: fewer when
    it is pinned, e.g. by ``taskset -c 0``), the load average now, the
    platform, Python and the CPU (:func:`cpu_from_cpuinfo`; ``None`` where
    there is no ``/proc/cpuinfo``)."""
    try:
        cpu = cpu_from_cpuinfo(CPUINFO.read_text())
    except OSError:
        cpu = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
    }


def machine_cores(info: dict) -> int:
    """The machine's cores in a ``machine()`` record, or in the ``cpus`` field
    of the records some benchmarks wrote before this module.

    >>> machine_cores({"cpu_count": 8}), machine_cores({"cpus": 2})
    (8, 2)
    """
    return info["cpu_count"] if "cpu_count" in info else info["cpus"]


def cpu_description(info: dict) -> str:
    """The CPU of a ``machine()`` record in words, e.g. ``"Intel Xeon with
    AVX2, AVX-512, AVX512-BF16, no AMX-BF16"``; ``"CPU not recorded"`` for a
    record made before the field existed or where it could not be read.

    >>> cpu_description({"cpu": {"model": "Xeon", "matrix_flags": ["avx2"]}})
    'Xeon with AVX2, no AVX-512, no AVX512-BF16, no AMX-BF16'
    >>> cpu_description({})
    'CPU not recorded'
    """
    cpu = info.get("cpu")
    if not cpu:
        return "CPU not recorded"
    have = set(cpu["matrix_flags"])
    sets = [
        name if flag in have else f"no {name}" for flag, name in MATRIX_FLAGS.items()
    ]
    return f"{cpu['model'] or 'unknown model'} with {', '.join(sets)}"
