"""Datasets: OCEC parquet and image folders, decoded once into uint8 tensors (see docs/data.md)."""

from __future__ import annotations

from ocec_engine.data.folders import IMAGE_EXTENSIONS
from ocec_engine.data.loader import load_dataset
from ocec_engine.data.split import LABEL_NAMES, SPLIT_ALIASES, DataSplit, Label, Split

__all__ = ["IMAGE_EXTENSIONS", "LABEL_NAMES", "SPLIT_ALIASES", "DataSplit", "Label", "Split", "load_dataset"]
