"""mlpipe: generate, scan and deploy a cross-account ML train-and-deploy pipeline as Terraform."""

__version__ = "0.1.0"
