"""The example jobs ``dtorch-run`` runs by name (``job: digits_mlp`` is dtorch.jobs.digits_mlp).

Each one also runs on its own in one process: ``python jobs/digits_mlp.py``.
"""
