"""Beam runners this project supplies: `dask_runner.DaskRunner`, Beam's Dask runner with its gaps fixed.

Shipped to the workers with the job (`setup.py`), since the runner's evaluators run there.
"""
