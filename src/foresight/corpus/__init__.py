"""The embedded sample corpus (``foresight corpus sample``): real text from the Python installation and the
packages of the ``demo`` extra, labelled with LSBS sources."""

from foresight.corpus.base import SOURCES, Doc, Origin, Provenance
from foresight.corpus.build import FORMAT, CorpusSummary, build_sample_corpus, default_origins

__all__ = ["FORMAT", "SOURCES", "CorpusSummary", "Doc", "Origin", "Provenance", "build_sample_corpus",
           "default_origins"]
