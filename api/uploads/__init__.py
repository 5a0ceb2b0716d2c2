"""Checks for files uploaded over HTTP (``POST /models``, ``POST /datasets``) — no torch here.

- ``pickle_scan``: decides whether a checkpoint's pickle would load with
  ``torch.load(weights_only=True)`` by walking its opcodes against an allowlist; nothing in it runs.
- ``checkpoint``: the torch zip container around that pickle (records, storages, the weights).
- ``images`` / ``parquet_data`` / ``zip_data``: OCEC datasets — columns, labels, splits, decodable
  images, zip-slip-safe extraction with size and file-count limits.
- ``receive``: the request body (multipart or raw) streamed to a staging file with its SHA-256.
- ``store``: where accepted uploads live under the model and data roots.
- ``service``: the upload service the routes call: receive, check, place and record an upload.
"""
