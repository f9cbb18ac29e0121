"""The project's tooling. This package is a library: harness (the programs as processes, a broker
or cluster of our own, Docker), p7check (the independent oracle), partition_files (the partition
files as an outsider reads them), outages (the broker-outage scenario) and relay (a TCP relay, by
which the grader reaches the broker of a container without a network). The programs run by
hand or by make (make run, the soaks) are in tools/scripts/; nothing imports them. Nothing here
imports grader/ or bench/."""
