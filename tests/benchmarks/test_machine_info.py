"""benchmarks/machine_info.py: the CPU a benchmark ran on, read and described."""

import sys

from script_runs import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))

import machine_info  # noqa: E402

# Two processors, as /proc/cpuinfo lists them; only the first is read.
CPUINFO = (
    "processor\t: 0\n"
    "vendor_id\t: GenuineIntel\n"
    "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    "flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 amx_tile amx_bf16\n"
    "\n"
    "processor\t: 1\n"
    "model name\t: Another CPU\n"
    "flags\t\t: fpu sse2\n"
)


def test_cpu_from_cpuinfo_reads_the_first_processor():
    assert machine_info.cpu_from_cpuinfo(CPUINFO) == {
        "model": "Intel(R) Xeon(R) Platinum 8480+",
        "matrix_flags": ["avx2", "avx512f", "avx512_bf16", "amx_bf16"],
    }


def test_cpu_from_cpuinfo_without_the_fields():
    assert machine_info.cpu_from_cpuinfo("processor\t: 0\n") == {
        "model": None,
        "matrix_flags": [],
    }
    # avx512bw alone is not AVX-512 Foundation; a flag must match whole.
    text = "model name : X\nflags : avx512bw avx512_bf16x\n"
    assert machine_info.cpu_from_cpuinfo(text)["matrix_flags"] == []


def test_cpu_description_names_what_is_there_and_what_is_not():
    info = {"cpu": machine_info.cpu_from_cpuinfo(CPUINFO)}
    assert machine_info.cpu_description(info) == (
        "Intel(R) Xeon(R) Platinum 8480+ with AVX2, AVX-512, AVX512-BF16, AMX-BF16"
    )
    info = {"cpu": {"model": None, "matrix_flags": ["avx2", "avx512f"]}}
    assert machine_info.cpu_description(info) == (
        "unknown model with AVX2, AVX-512, no AVX512-BF16, no AMX-BF16"
    )
    # A record made before the field existed, or without /proc/cpuinfo.
    assert machine_info.cpu_description({"cpu_count": 2}) == "CPU not recorded"
    assert machine_info.cpu_description({"cpu": None}) == "CPU not recorded"


def test_machine_records_cores_load_and_cpu(monkeypatch, tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    monkeypatch.setattr(machine_info, "CPUINFO", path)
    info = machine_info.machine()
    assert info["cpu"]["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert 1 <= info["cpus_available"] <= info["cpu_count"]
    assert len(info["load_average_at_start"]) == 3
    assert info["python"].count(".") == 2
    monkeypatch.setattr(machine_info, "CPUINFO", tmp_path / "missing")
    assert machine_info.machine()["cpu"] is None


def test_machine_cores_reads_both_record_kinds():
    # machine()'s record, and the ``cpus`` of records written before it.
    assert machine_info.machine_cores({"cpu_count": 8, "cpus_available": 1}) == 8
    assert machine_info.machine_cores({"cpus": 2}) == 2
