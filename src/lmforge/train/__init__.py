"""Training: one entry point (run.run_training), stage modules, and callbacks every stage shares."""
