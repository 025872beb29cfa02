FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backends backends
COPY modelstore modelstore
COPY access access
COPY schemas schemas
COPY service service
COPY modelshelf modelshelf
RUN pip install --no-cache-dir ".[server]"
ENV MODELSHELF_DATA_DIR=/data MODELSHELF_HOST=0.0.0.0 MODELSHELF_PORT=8000
VOLUME /data
EXPOSE 8000
CMD ["modelshelf", "serve"]
