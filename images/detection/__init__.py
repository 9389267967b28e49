"""Object detection: the ONNX engine, the model registry, runs, batch jobs and their API."""
