"""lmforge: from raw data to a served, evaluated, exported language model with one YAML file."""

__version__ = "0.1.0"
