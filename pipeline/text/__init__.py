"""Caption text: normalisation and ids, text encoders, and caption vectors shared through files."""
