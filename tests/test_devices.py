"""course_lib.devices: picking a device, refusing what is not there, precision rules, one process by default."""
import os

import pytest
import torch

from course_lib import devices


def test_auto_falls_back_to_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert devices.pick_device("auto") == torch.device("cpu")
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.pick_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.pick_device("auto") == torch.device("cuda")


def test_a_device_that_is_not_there_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="sees no CUDA GPU.*--device auto or cpu"):
        devices.pick_device("cuda")
    with pytest.raises(ValueError, match="MPS .* is not available"):
        devices.pick_device("mps")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        devices.pick_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"only 1 GPU\(s\)"):
        devices.pick_device("cuda:1")
    assert devices.pick_device("cuda:0") == torch.device("cuda", 0)


def test_the_cpu_trains_in_fp32_only():
    cpu = torch.device("cpu")
    devices.check_precision("fp32", cpu)
    for precision in ("bf16", "fp16"):
        with pytest.raises(ValueError, match=f"--precision {precision} needs a CUDA GPU"):
            devices.check_precision(precision, cpu)
    with pytest.raises(ValueError, match="unknown precision"):
        devices.check_precision("fp8", cpu)
    scaler = devices.grad_scaler(cpu, "fp32")  # disabled: passes the loss through unscaled
    loss = torch.tensor(2.0)
    assert not scaler.is_enabled() and scaler.scale(loss) is loss


def test_outside_torchrun_there_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not devices.launched_by_torchrun()
    assert devices.start_processes(torch.device("cpu")) == torch.device("cpu")
    assert devices.world() == (0, 1) and devices.is_main_process()


def test_lessons_use_one_thread_unless_told_otherwise(monkeypatch):
    """Issue 18: the lessons never oversubscribe a shared CPU; $COURSE_THREADS is the way out."""
    monkeypatch.delenv(devices.LESSON_THREADS_ENV, raising=False)
    assert devices.lesson_threads() == 1
    monkeypatch.setenv(devices.LESSON_THREADS_ENV, " 3 ")
    assert devices.lesson_threads() == 3
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv(devices.LESSON_THREADS_ENV, bad)
        with pytest.raises(ValueError, match="COURSE_THREADS"):
            devices.lesson_threads()


def test_a_lesson_sets_its_threads_when_it_imports_its_checks():
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", devices.LESSON_THREADS_ENV)}
    code = ("import torch; torch.set_num_threads(2); "
            "from course_lib.lesson_checks import forward_diffusion; print(torch.get_num_threads())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split()[-1] == "1"
    env[devices.LESSON_THREADS_ENV] = "2"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split()[-1] == "2"
