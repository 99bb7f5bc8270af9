"""The Terraform engine: discovery, CLI config, argument builders, the runner and the plan summary."""
