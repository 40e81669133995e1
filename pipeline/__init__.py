"""foresight curation pipeline: datatrove stages from raw text to tokenized Parquet shards."""

__version__ = "0.1.0"
