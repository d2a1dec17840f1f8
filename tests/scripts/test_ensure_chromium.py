"""scripts/ensure-chromium decides right: nothing when Chromium is there, install when it may,
else the one command to run and exit 2. Run with fake `id`, `sudo` and `apt-get` on PATH, so
nothing is really installed."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-chromium"


@dataclass
class Machine:
    """A scratch PATH of fake commands that log what they were asked to do."""

    bin: Path
    log: Path
    chromium: Path

    def fake(self, name: str, body: str = "") -> None:
        path = self.bin / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{self.log}"\n{body}\n')
        path.chmod(0o755)

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/bin/sh", str(SCRIPT)], capture_output=True, text=True,
                              env={"PATH": str(self.bin), "SIGNOFF_CHROMIUM": str(self.chromium)},
                              timeout=30, check=False)

    def ran(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    (tmp_path / "bin").mkdir()
    found = Machine(bin=tmp_path / "bin", log=tmp_path / "ran.log",
                    chromium=tmp_path / "usr-bin-chromium")
    # apt-get "installs" chromium by creating the file the script looks for.
    found.fake("apt-get", f'echo "  as DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "{found.log}"\n'
                          f'case "$*" in *install*) printf "#!/bin/sh\\n" > "{found.chromium}"; '
                          f'/bin/chmod +x "{found.chromium}";; esac')
    return found


def test_chromium_present_means_nothing_to_do(machine: Machine) -> None:
    """An executable at the path: exit 0, nothing run, nothing said."""
    machine.chromium.write_text("#!/bin/sh\n")
    machine.chromium.chmod(0o755)
    machine.fake("id", "echo 1000")
    result = machine.run()
    assert (result.returncode, result.stdout, result.stderr, machine.ran()) == (0, "", "", [])


def test_root_installs_debian_chromium_quietly(machine: Machine) -> None:
    """As root: apt-get update, then install chromium, non-interactive; exit 0."""
    machine.fake("id", "echo 0")
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert [line for line in machine.ran() if not line.startswith("id ")] == [
        "apt-get update -qq", "  as DEBIAN_FRONTEND=noninteractive",
        "apt-get install -y -qq chromium", "  as DEBIAN_FRONTEND=noninteractive"]
    assert machine.chromium.exists()
    assert "Installing Debian's chromium" in result.stderr


def test_passwordless_sudo_installs_through_sudo(machine: Machine) -> None:
    """Not root, but `sudo -n true` succeeds: the same two apt-get calls, through sudo -n."""
    machine.fake("id", "echo 1000")
    machine.fake("sudo", 'shift; [ "$1" = true ] && exit 0; exec /usr/bin/env "$@"')
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert [line for line in machine.ran() if not line.startswith("id ")] == [
        "sudo -n true",
        "sudo -n DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        "apt-get update -qq", "  as DEBIAN_FRONTEND=noninteractive",
        "sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        "apt-get install -y -qq chromium", "  as DEBIAN_FRONTEND=noninteractive",
    ]


@pytest.mark.parametrize("sudo", ["none", "asks for a password"])
def test_no_way_to_install_says_the_command_and_exits_2(machine: Machine, sudo: str) -> None:
    """Not root, and sudo missing or wanting a password: the command to run, exit 2, and
    nothing installed."""
    machine.fake("id", "echo 1000")
    if sudo != "none":
        machine.fake("sudo", "echo 'sudo: a password is required' >&2; exit 1")
    result = machine.run()
    assert result.returncode == 2
    assert "sudo apt-get install chromium" in result.stderr
    assert not [line for line in machine.ran() if line.startswith(("apt-get", "sudo -n D"))]
    assert not machine.chromium.exists()


def test_an_install_that_leaves_no_chromium_exits_2(machine: Machine) -> None:
    """apt-get "succeeded" but the path is still missing: say so, exit 2."""
    machine.fake("id", "echo 0")
    machine.fake("apt-get")
    result = machine.run()
    assert result.returncode == 2
    assert "still missing" in result.stderr
