# SMITE plug-in path set-up. Runs in every Nuke session (GUI, terminal, render): paths only, no UI, no network.
# Nuke puts this folder on sys.path; `smite install-nuke` puts pyzmq, msgpack and the daemon client
# (smite_client.py) in python/ next to it.
import os
import sys

import smite_nuke  # only to find this folder (Nuke does not promise __file__ in init.py); imports nothing else

_libs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(smite_nuke.__file__))), "python")
if os.path.isdir(_libs) and _libs not in sys.path:
    sys.path.insert(0, _libs)
