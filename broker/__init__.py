"""The broker launcher, importable as broker.launcher by the tooling (it also runs as a script)."""
