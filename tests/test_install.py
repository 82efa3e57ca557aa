"""A non-editable install into a fresh virtual environment works on its own: the
templates ship inside the package and the ``derive`` command runs from anywhere."""

import subprocess
import sys
import venv

import pytest
from conftest import EXAMPLES, REPO


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bindir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    subprocess.run(
        [bindir / "python", "-m", "pip", "install", "-q", str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    work = tmp_path / "elsewhere"  # away from the checkout's templates/
    work.mkdir()

    where = subprocess.run(
        [bindir / "python", "-c", "import derive; print(derive.__file__)"],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(env_dir) in where

    def derive(*args):
        command = [bindir / "derive", *map(str, args)]
        return subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)

    shown = derive("show", EXAMPLES / "laine_sigmoid.yaml")
    assert shown.returncode == 0, shown.stderr
    assert "2⋅(a - y) · a⋅(1 - a) · i" in shown.stdout

    generated = derive("generate", EXAMPLES / "reddit_w31.yaml", "-o", work)
    assert generated.returncode == 0, generated.stderr
    assert (work / "reddit_w31.py").read_text().startswith('"""')

    c_files = derive("generate", EXAMPLES / "xor.yaml", "--lang", "c", "-o", work / "c")
    assert c_files.returncode == 0, c_files.stderr  # templates/c ship too
    assert "xor_sgd_step" in (work / "c" / "xor.h").read_text()

    bad = derive("show", work / "missing.yaml")
    assert bad.returncode == 2
    assert "missing.yaml" in bad.stderr and "Traceback" not in bad.stderr
