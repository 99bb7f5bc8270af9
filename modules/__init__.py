"""Constructs of the three accounts. Each receives the provider of its account; none creates one."""
