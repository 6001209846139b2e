"""Model importers and end-to-end runs (installed as ``hwsim.models``).

Importing the package registers the importer-side recipe steps (``checkpoint``) with :mod:`hwsim.ptq`.
"""

from hwsim.models import checkpoint_step  # noqa: F401  (registers the 'checkpoint' recipe step)
