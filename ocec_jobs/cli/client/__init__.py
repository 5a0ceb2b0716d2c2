"""The client commands of ``ocec-jobs``: jobs, steering, files — pure HTTP to a server (httpx).

``ocec-jobs submit | list | status | follow | stage | decide | resume | fork | pause | cancel | race |
download | upload-model | upload-dataset | evaluate``, each with ``--url`` (``OCEC_URL``), ``--key``
(``OCEC_API_KEY``), ``--json`` and ``--timeout``. Exit codes: ``exitcodes.Exit`` (docs/cli.md).
Registered by the ``ocec-jobs`` dispatcher (``ocec_jobs.cli.main``) through ``register``.
"""

from __future__ import annotations

from ocec_jobs.cli.main import SubParsers


def register(subparsers: SubParsers) -> None:
    from ocec_jobs.cli.client import control, evaluations, files, jobs, races
    from ocec_jobs.cli.client.args import common_parser

    common = common_parser()
    for module in (jobs, control, races, files, evaluations):
        module.register(subparsers, common)
