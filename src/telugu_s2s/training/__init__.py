"""Training pipeline: Telugu corpus synthesis, codec and S2S training, evaluation, export."""
