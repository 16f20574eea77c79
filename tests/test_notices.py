"""Third-party notices: the backbone's loading notices are hidden, or one line each with verbose."""

import subprocess
import sys

LOAD = ("from smite.notices import quiet_third_party; quiet_third_party({verbose}); "
        "from smite.model.backbone import load_backbone; load_backbone('tiny', device='cpu'); print('loaded')")


def _start(verbose: bool) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LOAD.format(verbose=verbose)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out, err


def test_loading_notices_are_hidden_or_one_line_each():
    # Two fresh processes (a notice shows once per process), run side by side: each is one thread importing.
    quiet, loud = _start(False), _start(True)
    (quiet_out, quiet_err), (loud_out, loud_err) = _finish(quiet), _finish(loud)
    assert quiet_out == "loaded\n" and quiet_err == ""
    lines = loud_err.splitlines()
    assert loud_out == "loaded\n"
    assert all(line.startswith("smite: note (") for line in lines), lines
    assert len(lines) == len(set(lines)), "a repeated notice is shown once"
