"""The schema's consumer map: every config field is read by the code it configures.

A test (tests/core/test_config_consumers.py) finds, for each field, the modules outside config/
that read it; a field nothing reads would be accepted and silently dropped. The few fields that
need no reader are listed here with the reason: the config's own checks refuse every value but
the one the code implements, so the setting is honoured or refused, never ignored.
"""

from __future__ import annotations

CHECKED_ONLY: dict[str, str] = {
    "quantization_method": "only bnb is implemented; config/checks.py refuses the other methods",
    "badam_mode": "only layer is implemented; config/optim.py refuses ratio",
    "badam_update_ratio": "ratio mode only, which config/optim.py refuses",
    "badam_mask_mode": "ratio mode only, which config/optim.py refuses",
    "export_size": "read as ExportConfig.shard_bytes (the parsed size) by export/merge.py",
}
