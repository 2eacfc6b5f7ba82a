"""What is made from a finished run directory: the report, the trainer's CSV export (ids,
held-out splits, trainer configs), per-media metadata variants. Products read the run's tables;
they never import a stage."""
