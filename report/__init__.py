"""What people read from a committed run's outputs: the analyst's HTML page and the response queue as CSV.

    python -m report.html_report --output_dir out/     # -> out/report.html (`make report`)
    python -m report.queue_export --output_dir out/    # -> out/response_queue.csv (`make queue`)

Both read the Parquet tables of the run committed in `--output_dir` and nothing else; they run on
the analyst's machine, never on the job's workers, so `setup.py` does not ship this package
(pandas and matplotlib are the `report` extra).
"""
