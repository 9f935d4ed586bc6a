"""The foundation every layer may use: the project's error type, atomic writes, devices, settings,
progress lines.

May import: the standard library and third-party packages only, never another ``dnafm_lib`` layer.
"""
