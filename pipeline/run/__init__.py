"""Running the stages: the ``build`` assembly, the stage runner (checkpoints, reconciliation,
commits, manifest), Beam and runner options, and the dask runner."""
