"""The shapes of the stable keys in a topic (links, the API and CDS Hooks use them), in one place.

Read by the model validators, the integrity check and anything else that must tell a well-formed
key from a typo.
"""

from __future__ import annotations

import re

# Topic, question, choice, procedure, scenario… keys: lowercase words joined by "-" or "_".
SLUG_PATTERN = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
SLUG_HELP = "Use lowercase letters, digits, and single hyphens or underscores (e.g. mri-lumbar-wo)."
# Reference keys are written like citations: capitals and digits joined by "-".
REFERENCE_KEY_PATTERN = r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$"
REFERENCE_KEY_HELP = "Use capitals, digits and hyphens (e.g. ACR-LBP-2021)."

SLUG = re.compile(SLUG_PATTERN)
REFERENCE_KEY = re.compile(REFERENCE_KEY_PATTERN)
