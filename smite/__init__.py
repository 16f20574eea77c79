"""SMITE for compositing: few-shot, temporally consistent part segmentation of shots.

Importing ``smite`` never imports torch: host plugins and the daemon client import parts of this
package inside Nuke and Blender. The engine modules (``smite.model.backbone``, ``smite.learn.learner``,
``smite.model.reference``...) import torch when they are imported themselves.
"""

from smite.errors import SmiteError

__version__ = "0.1.0"
__all__ = ["SmiteError", "__version__"]
