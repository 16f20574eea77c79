# SMITE plug-in path set-up. Runs in every Nuke session (GUI, terminal, render): paths only, no UI, no network.
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
# `smite install-nuke` puts pyzmq, msgpack and the daemon client (smite_client.py) in python/ next to this file.
_libs = os.path.join(_here, "python")
if os.path.isdir(_libs) and _libs not in sys.path:
    sys.path.insert(0, _libs)
if _here not in sys.path:
    sys.path.insert(0, _here)
