"""Synthesis: runs the CDK for Terraform app (main.py) in a child and post-processes its HCL."""
