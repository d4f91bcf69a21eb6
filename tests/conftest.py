"""Session-wide test environment.

Servers and workers refuse to start without a master key; the tests' processes run in the
explicit development mode (an insecure built-in key) unless a test sets up its own key or
removes this to check the refusal.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORCHESTRION_DEV_MODE", "1")
