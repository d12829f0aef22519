"""Data: registry → loaders → converters → canonical record → template → processor → packing → collator."""
