"""Exports of a saved detector for serving outside this pipeline (onnx_export.py)."""
