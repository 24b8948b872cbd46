"""spamclf: a spam classifier for e-mail -- TF-IDF features and a Keras dense network.

Python API (the CLI calls the same functions)::

    import spamclf
    spamclf.train(["data/sample"], "models/demo", config="configs/smoke.yaml")
    clf = spamclf.load("models/demo")
    for row in clf.predict(["inbox/"]):
        print(row.path, row.score, row.label)
    report = spamclf.evaluate("models/demo", ["data/sample"])

    # learning from corrections, one message at a time (docs/learning.md)
    with spamclf.models_lock("models/mine"):
        clf = spamclf.load("models/mine", create=True)
        clf.learn(["junk/"], "spam")
        clf.save()
"""

__version__ = "0.1.0"

_API = {
    "train": ("commands.train", "train"),
    "evaluate": ("commands.evaluate", "evaluate"),
    "preprocess": ("commands.preprocess", "preprocess"),
    "load": ("commands.predict", "load"),
    "Classifier": ("commands.predict", "Classifier"),
    "load_config": ("config", "load_config"),
    "relearn": ("commands.learning", "relearn_models"),
    "models_lock": ("model.online", "models_lock"),
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    # Imported on first use: `import spamclf` stays cheap, and classifying never pulls in TensorFlow.
    if name in _API:
        import importlib

        module, attr = _API[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'spamclf' has no attribute {name!r}")
