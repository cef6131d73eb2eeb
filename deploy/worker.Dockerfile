# The Dataflow worker image (--sdk_container_image): Beam's Python SDK harness with this project, its
# dependencies and the embedded model's cache built in, so that no worker installs torch or converts the
# model at run time (~30 s per worker, more for the ONNX export). launch.sh builds it with the launcher.
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/social-listening
COPY . /opt/social-listening

# torch first, pinned, CPU build (the Makefile does the same); then the project.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -e .

# The converted checkpoint and the ONNX graphs of the default precision (fp32), built once here. The job
# reads its cache from SOCIAL_LISTENING_CACHE: workers find them ready. (A job run with --precision int8
# exports its graph on each worker at start; add `--precision int8` below to build that too.)
ENV SOCIAL_LISTENING_CACHE=/opt/social-listening/model-cache
RUN python -m models.build --cache_dir "$SOCIAL_LISTENING_CACHE"

# The SDK harness is the entry point (Beam's base image sets it): this image runs workers, not the launcher.
ENTRYPOINT ["/opt/apache/beam/boot"]
