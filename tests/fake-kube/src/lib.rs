//! A fake Kubernetes API server for tests: list and watch of pods and InferencePools.
