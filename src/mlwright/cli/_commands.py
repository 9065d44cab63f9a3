"""Registers every command group on the application (imported by ``mlwright.cli``).

Each line imports one module of commands; keep them free of heavy imports.
"""

from __future__ import annotations
