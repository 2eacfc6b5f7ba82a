"""Sub-commands of the covr-datagen CLI, one module each."""
