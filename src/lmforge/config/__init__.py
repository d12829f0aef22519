"""Configuration: schemas per group, loading with overrides, and cross-key checks."""

from lmforge.config.load import build_config, dump_config, load_config, parse_overrides, read_yaml
from lmforge.config.schema import RunConfig

__all__ = ["RunConfig", "build_config", "dump_config", "load_config", "parse_overrides", "read_yaml"]
