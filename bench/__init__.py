"""feedhub's benchmark suite: `bash bench/run` (see docs/performance.md)."""
