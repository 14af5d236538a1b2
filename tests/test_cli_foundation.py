import subprocess
import sys

import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "prism_edge.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_init_and_inspect(tmp_path):
    out = tmp_path / "m.bits"
    r = run("init", "--seed", "42", "-o", str(out), "--png", str(tmp_path / "m.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.png").stat().st_size > 100
    r = run("inspect", str(out))
    assert r.returncode == 0 and "mnist-small" in r.stdout and "533504" in r.stdout
    assert "bits per weight: 1.00" in r.stdout


@pytest.mark.parametrize("damage", ["truncate", "flip", "missing", "garbage"])
def test_inspect_bad_file_one_line_no_traceback(tmp_path, damage):
    out = tmp_path / "m.bits"
    assert run("init", "-o", str(out)).returncode == 0
    data = out.read_bytes()
    if damage == "truncate":
        out.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        out.write_bytes(data[:200] + bytes([data[200] ^ 4]) + data[201:])
    elif damage == "missing":
        out.unlink()
    else:
        out.write_bytes(b"hello world, not a mask at all")
    r = run("inspect", str(out))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1 and r.stderr.startswith("error:")


def test_init_unwritable_path_leaves_nothing(tmp_path):
    r = run("init", "-o", str(tmp_path / "nope" / "m.bits"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_class_guidance_without_classes_is_one_line(tmp_path):
    r = run("train", "--unconditional", "--class-guidance", "0.4", "-o", str(tmp_path / "run"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "class guidance needs classes" in r.stderr
    assert not (tmp_path / "run").exists()


def test_train_defaults_are_the_configs():
    """`prism-edge train` with no options describes RunConfig(), and the options given here
    (one of each kind: value, flag, switch, choice) change exactly their own fields."""
    from prism_edge.cli import run_config, train_cmd
    from prism_edge.config import RunConfig

    def cfg(*args):
        return run_config(train_cmd.make_context("train", list(args)).params).to_dict()

    assert cfg() == RunConfig().to_dict()
    changed = cfg("--seed", "7", "--no-mada", "--local-steps", "3", "--prob-clip", "0.01",
                  "--unconditional", "--uplink", "packed", "--optimizer-state", "reset",
                  "--mean-scale", "1.5", "--class-guidance", "0.4", "--final-average", "2",
                  "--guidance-center", "model", "--center-per-class", "64")
    want = RunConfig().to_dict()
    want.update(seed=7, conditional=False, final_average=2)
    want["client"].update(local_steps=3, optimizer_state="reset", mean_scale=1.5,
                          class_guidance=0.4, guidance_center="model", center_per_class=64)
    want["server"].update(mada=False, clip=0.01, uplink="packed")
    assert changed == want
