"""dtorch.serve: TorchServe's interface (model archives, inference/management/metrics APIs) in one process tree.

``archiver.py`` (dtorch-model-archiver) writes ``.mar`` files; ``mar.py`` checks and extracts them;
``worker.py`` runs a model in its own process (``handlers.py``, ``loading.py``), spoken to over pipes in
``protocol.py`` frames (JSON headers, raw bytes; no pickle). See ARCHITECTURE.md, "Serving".
"""
