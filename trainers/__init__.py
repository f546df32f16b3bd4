"""Training stages and model helpers. Trainers see only files: a run folder in, a run folder out."""
