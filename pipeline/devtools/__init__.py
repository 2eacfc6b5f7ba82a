"""Development aids for tests, benchmarks and the demo: synthetic corpora and clips, tiny
random-weight models built locally, and a check for pipeline steps that serialise on one worker.
Nothing in the pipeline depends on them, except the demo command's synthetic clips."""
