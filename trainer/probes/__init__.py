"""foresight trainer/probes."""
