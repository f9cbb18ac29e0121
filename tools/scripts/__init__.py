"""The tooling's programs, each run as `python -m tools.scripts.NAME` and imported by nothing:
run_pipeline (make run), soak_data and soak_outages (soaks run by hand). What they share, and
what the tests use too, is the library one folder up: harness, p7check, partition_files,
outages."""
