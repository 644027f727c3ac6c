"""Speed and memory benchmarks. `python -m benchmarks` (or `make bench`) runs them all and prints
one table. Each module `benchmarks/bench_*.py` defines `run() -> list[Row]`."""
