"""foresight curation pipeline: datatrove stages from raw text to tokenized Parquet shards."""

from foresight.formats import __version__

__all__ = ["__version__"]
