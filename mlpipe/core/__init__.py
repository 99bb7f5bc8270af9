"""Shared basics below both the generator and the wrapper: errors, config, names, templates, assets."""
