"""The workflow: synth -> gate -> init -> plan -> apply, the workspace, seeding and AWS clients."""
