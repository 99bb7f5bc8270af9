"""Constructs of the three accounts. Each receives the provider of its account; none creates one."""

from modules.bindings import enter_lean

enter_lean()  # before any construct imports a binding: see modules/bindings.py
