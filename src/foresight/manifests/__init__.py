"""Token-exact manifests: build, read, verify, export (format in docs/architecture.md)."""

from foresight.formats.manifest import ManifestHeader
from foresight.manifests.build import build
from foresight.manifests.export import export
from foresight.manifests.read import read
from foresight.manifests.schema import ENTRIES_FILE, ENTRIES_SCHEMA, FORMAT, MANIFEST_FILE, ManifestError, header_digest
from foresight.manifests.stream import iter_token_arrays, write_token_stream
from foresight.manifests.verify import verify

__all__ = ["ENTRIES_FILE", "ENTRIES_SCHEMA", "FORMAT", "MANIFEST_FILE", "ManifestError", "ManifestHeader", "build",
           "export", "header_digest", "iter_token_arrays", "read", "verify", "write_token_stream"]
