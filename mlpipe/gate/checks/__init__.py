"""The project's own checkov checks (ids ``CKV_MLP_*``), loaded with ``--external-checks-dir checks``.

checkov only loads Python checks from a directory that has an ``__init__.py``; this file exists
for that reason. checkov imports each file as a top-level module, so the checks import their
shared helpers with a fallback (``from .common`` as a package, ``from common`` under checkov).
"""
