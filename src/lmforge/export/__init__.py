"""Export: merged, standalone model directories."""
