"""LSBS taxonomy and classifiers: plain models, no datatrove (the pipeline wraps them as a stage)."""
