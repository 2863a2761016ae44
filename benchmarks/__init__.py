"""actorflow's pattern benchmarks: the five patterns × three workloads, against a raw-Ray
floor, LangGraph and the ideal. Run `python -m benchmarks [--quick] [--json PATH] [--plot PATH]`.

Nothing is imported here: agent actors import `benchmarks.workloads`, and must not pay for the
harness, Ray baselines or LangGraph.
"""
