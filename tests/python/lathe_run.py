"""Running the `lathe` command from the Python end-to-end tests (shared by every test_*.py here)."""
import os
import subprocess

LATHE = os.environ.get("LATHE", "lathe")
SHARED = os.environ.get("LATHE_SHARED_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))


def run(*args, check=True, timeout=900):
    """Runs `lathe ARGS`; with check, a non-zero exit fails the test with lathe's stderr."""
    proc = subprocess.run([LATHE, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"lathe {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
