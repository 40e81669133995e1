"""Token-exact manifests: build, read, verify, export (design §5)."""
