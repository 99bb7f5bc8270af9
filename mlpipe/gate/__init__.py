"""The gate: checkov with our own checks, policy lint and the access proof, before Terraform runs."""
