"""Disk use on ``GET /metrics``: what the run folders and the uploads hold, walked at scrape time.

- ``ocec_jobs_disk_bytes{area}``: ``runs`` (every run folder under the runs root) and ``uploads``
  (uploaded models and datasets under the model and data roots);
- ``ocec_jobs_job_disk_bytes{job_id}``: one run folder (a deleted job's folder is gone, so its series
  ends with it).

Read from the file system, not from the checkpoint records: logs, exports and leftovers count too.
The retention policy (``jobstore.retention``) keeps each folder to a few files, so a walk is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

from api.uploads.store import UPLOADS_DIR
from jobstore.disk import folder_bytes, usage_by_folder

PREFIX = "ocec_jobs"


@dataclass(frozen=True)
class DiskCollector:
    runs_root: Path
    model_root: Path
    data_root: Path

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        runs = usage_by_folder(self.runs_root)
        per_job = GaugeMetricFamily(
            f"{PREFIX}_job_disk_bytes", "Bytes in a job's run folder", labels=["job_id"]
        )
        for job_id, size in sorted(runs.items()):
            per_job.add_metric([job_id], size)
        uploads = sum(folder_bytes(root / UPLOADS_DIR) for root in (self.model_root, self.data_root))
        total = GaugeMetricFamily(
            f"{PREFIX}_disk_bytes", "Bytes on disk: run folders (runs) and uploads", labels=["area"]
        )
        total.add_metric(["runs"], sum(runs.values()))
        total.add_metric(["uploads"], uploads)
        yield total
        yield per_job
