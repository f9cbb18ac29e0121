"""The project's tooling. This package is a library: harness (the programs as processes, a broker
or cluster of our own, Docker), p7check (the independent oracle), partition_files (the partition
files as an outsider reads them) and outages (the broker-outage scenario). The programs run by
hand or by make (make run, the soaks) are in tools/scripts/; nothing imports them. Nothing here
imports grader/ or bench/."""
