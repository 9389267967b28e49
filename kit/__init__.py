"""The floor every app stands on: errors, the API kit, logs, outbound HTTP, workers, metrics.

Nothing here imports an app or the project package (see docs/architecture.md)."""
