"""The project's tooling: the process harness, the independent oracle (p7check) and make run."""
