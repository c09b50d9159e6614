# drsbox: one image for the server (ui), the workers and the one-shot migration (dbmate from its wheel).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Never root: the process only needs its code and the storage volume.
RUN useradd --system --uid 10001 --home-dir /app drsbox \
    && mkdir -p /data/ufs && chown drsbox:drsbox /data/ufs
USER drsbox

ENV HOST=0.0.0.0 PORT=3000 UFS_STORAGE=/data/ufs
EXPOSE 3000
CMD ["python", "server.py"]
