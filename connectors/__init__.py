"""Connectors turn a platform's pages (or files) into `Mention` records.

They know HTTP, files and the platforms' formats, not Beam; `transforms/` wraps them.
"""
