"""The model: TF-IDF features, the Keras network, the NumPy scorer, explanations, and the models directory."""
