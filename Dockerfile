# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target api    -t ocec-jobs-api .     (FastAPI + dashboard; no torch, no CUDA)
#   docker build --target worker -t ocec-jobs-worker .  (Celery GPU worker; CUDA torch)

# ---- source: the project files both images install -------------------------------------------
FROM python:3.11-slim AS source
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY worker ./worker
COPY jobstore ./jobstore
COPY ocec_engine ./ocec_engine
COPY ocec_jobs ./ocec_jobs
COPY migrations ./migrations

# ---- api: small, CPU-only -----------------------------------------------------------------------
FROM python:3.11-slim AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OCEC_HOME=/var/lib/ocec-jobs
WORKDIR /app
COPY --from=source /src /app
RUN pip install --no-cache-dir ".[api]" && useradd --system --uid 10001 ocec \
    && mkdir -p "$OCEC_HOME" && chown ocec "$OCEC_HOME"
USER ocec
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["ocec-jobs", "api", "--host", "0.0.0.0", "--port", "8000"]

# ---- worker: CUDA runtime + torch -------------------------------------------------------------
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS worker
ENV DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    OCEC_HOME=/var/lib/ocec-jobs CUDA_DEVICE_ORDER=PCI_BUS_ID
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cu128
WORKDIR /app
COPY --from=source /src /app
RUN pip install --no-cache-dir ".[worker]" && useradd --system --uid 10001 ocec \
    && mkdir -p "$OCEC_HOME" && chown ocec "$OCEC_HOME"
USER ocec
# One Celery process per GPU, each pinned with CUDA_VISIBLE_DEVICES; the parent never touches CUDA.
CMD ["ocec-jobs", "worker", "--gpus", "all"]
