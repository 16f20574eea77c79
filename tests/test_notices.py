"""Third-party notices: the backbone's loading notices are hidden, or one line each with verbose."""

import subprocess
import sys

LOAD = ("from smite.notices import quiet_third_party; quiet_third_party({verbose}); "
        "from smite.model.backbone import load_backbone; load_backbone('tiny', device='cpu'); print('loaded')")


def _run(verbose: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOAD.format(verbose=verbose)], capture_output=True, text=True,
                          timeout=300, check=True)


def test_loading_notices_are_hidden_or_one_line_each():
    quiet, loud = _run(False), _run(True)
    assert quiet.stdout == "loaded\n" and quiet.stderr == ""
    lines = loud.stderr.splitlines()
    assert loud.stdout == "loaded\n"
    assert all(line.startswith("smite: note (") for line in lines), lines
    assert len(lines) == len(set(lines)), "a repeated notice is shown once"
