"""Speed, memory and density benchmarks of NVP Explorer (``python -m benchmarks.run``).

Each module runs on its own (``python -m benchmarks.<name> [--device cuda] [--quick]
[--json out.json]``), prints markdown tables and can write JSON; none of them is a
test, but ``tests/test_benchmarks.py`` runs each with ``--quick`` so they cannot rot.
"""
