"""Example agents for the shipped configs, doing real work on data shipped in `data/`.

Handlers are plain functions `fn(event, state) -> State`; point an `[agents.NAME]` section at
one with `handler = "actorflow.examples.<module>:<function>"`.

- `pipeline`  (configs/sequential.toml) collector → processor → validator → publisher:
  reads `data/sales.csv`, computes statistics, checks quality rules, writes a markdown report.
- `quality`   (configs/loop.toml) quality_improver: edits `data/draft.txt` one measured rule
  per iteration until its quality score reaches `target_quality`.
- `analysis`  (configs/collaborative.toml) analyzer, validator, processor: trends, data
  quality, and customer/channel segmentation of the CSV, each under its own state key.
- `research`  (configs/mixed.toml) analyzer, validator, enricher, then synthesizer →
  formatter → publisher: a research report with findings computed from the three analyses.
- `route`     (configs/route.toml) processor (clean the CSV) and analyzer (answer a
  "<metric> by <group>" query).

Data: `data/sales.csv` (200 orders, July–December 2024, with five planted quality problems:
two blank fields, a duplicate row, a negative quantity, a zero price) and `data/draft.txt`.
Every handler works with empty event data; `dataset` and `output_dir` (default
`actorflow-output/`) are the common options.
"""
