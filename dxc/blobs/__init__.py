"""Offloaded blobs: uploads, access-checked downloads, orphan collection (docs/blobs.md)."""
