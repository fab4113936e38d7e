"""Data-only contracts of the G60 platform: event payloads and public HTTP bodies.

No behaviour and no service imports: partners may vendor this package as their schema.
"""
