"""The formats every layer shares, at the bottom of the import order (docs/architecture.md): the shard schema,
the typed JSON formats (``ShardIndex``, ``ManifestHeader``, ``Accounting``) and hashes, the held-out split,
atomic writes, the tokenizer contract and the SQL helpers. Nothing here imports another foresight package."""

__version__ = "0.1.0"
