# SMITE menus (GUI sessions only): Nodes toolbar > SMITE, and a callback that resumes running jobs.
import nuke
import smite_nuke

_toolbar = nuke.menu("Nodes").addMenu("SMITE")
_toolbar.addCommand("SMITE", "import smite_nuke; smite_nuke.create_node()")
nuke.menu("Nuke").addMenu("SMITE").addCommand("Create SMITE node", "import smite_nuke; smite_nuke.create_node()")
nuke.addOnCreate(smite_nuke.on_create, nodeClass="Group")
